"""The batch publisher against a real broker: partitions, order, headers, size fallback.

`BatchPublisher` packs its own per-partition record batches with aiokafka's batch API, so this
checks on a real broker what a consumer of the verdict topics relies on: a claim's records land
on the partition aiokafka's (and the Java client's) default partitioner picks for its key, in
the order they were published, with their headers and a producer timestamp; a record without a
key is still delivered; a dead letter too large for a request arrives as its fallback.
"""

from __future__ import annotations

import time

import pytest
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

from service.producers import MAX_REQUEST_SIZE, build_producer
from service.publishing import BatchPublisher
from service.routing import JSON_HEADERS, OutRecord
from service.settings import KafkaSettings, Settings
from tests.integration.conftest import Topics, produce, read_topics

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


async def test_records_land_where_aiokafka_puts_their_keys_in_order_with_headers(
    kafka_bootstrap: str, topics: Topics
) -> None:
    claims = [f"CLM-{i:04d}".encode() for i in range(400)]
    # Every claim twice (a redelivery), the second verdict later in the stream than the first.
    records = [
        OutRecord(
            topics.flagged if i % 5 == 0 else topics.accepted,
            claims[i % 400],
            f'{{"n": {i}}}'.encode(),
            JSON_HEADERS,
        )
        for i in range(800)
    ]
    keyless = OutRecord(topics.dead_letter, None, b"<not json>", (("x-dlq-reason", b"not-json"),))
    huge = b"<" + b"x" * (MAX_REQUEST_SIZE + 10)
    oversized = OutRecord(
        topics.dead_letter,
        b"BIG",
        huge,
        (("x-dlq-reason", b"not-json"),),
        fallback=OutRecord(
            topics.dead_letter,
            b"BIG",
            b"",
            (("x-dlq-reason", b"not-json"), ("x-dlq-value-dropped", b"too large")),
        ),
    )
    settings = Settings(kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap))
    producer = build_producer(settings)
    await producer.start()
    try:
        publisher = BatchPublisher(lambda: producer, initial_backoff_s=0.05, max_backoff_s=0.2)
        attempts = (await publisher.publish([*records, keyless, oversized])).attempts
    finally:
        await producer.stop()
    # The same keys sent one by one by a plain aiokafka producer (its default partitioner).
    reference = await produce(kafka_bootstrap, topics.submitted, [(k, b"x") for k in claims])

    assert 2 == attempts  # the oversized dead letter is refused once, then sent as its fallback
    received = await read_topics(kafka_bootstrap, topics.outputs, at_least=802)
    assert 802 == len(received)
    expected_partition = {p.key: p.partition for p in reference}
    verdicts = [r for r in received if r.topic != topics.dead_letter]
    assert {r.key: expected_partition[r.key] for r in verdicts} == {
        r.key: r.partition for r in verdicts
    }
    for topic in (topics.accepted, topics.flagged):
        for partition in range(3):
            on_partition = sorted(
                (r for r in verdicts if (r.topic, r.partition) == (topic, partition)),
                key=lambda r: r.offset,
            )
            published = [
                rec.value
                for rec in records
                if rec.topic == topic and expected_partition[rec.key] == partition
            ]
            assert published == [r.value for r in on_partition]
    assert {JSON_HEADERS} == {r.headers for r in verdicts}

    dead = {r.key: r for r in received if r.topic == topics.dead_letter}
    assert b"<not json>" == dead[None].value
    assert (b"", b"too large") == (dead[b"BIG"].value, dead[b"BIG"].header("x-dlq-value-dropped"))


async def test_record_timestamps_are_set_by_the_producer(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """The batch builder stamps each record (CreateTime), as send() does: the benchmark and
    any lag monitoring read it."""
    settings = Settings(kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap))
    producer = build_producer(settings)
    await producer.start()
    before = int(time.time() * 1000)
    try:
        publisher = BatchPublisher(lambda: producer, initial_backoff_s=0.05, max_backoff_s=0.2)
        await publisher.publish(
            [OutRecord(topics.accepted, f"T-{i}".encode(), b"{}", JSON_HEADERS) for i in range(5)]
        )
    finally:
        await producer.stop()
    after = int(time.time() * 1000)
    consumer = AIOKafkaConsumer(
        topics.accepted, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        stamps: list[int] = []
        deadline = time.monotonic() + 30
        while len(stamps) < 5 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            stamps.extend(r.timestamp for rs in batch.values() for r in rs)
    finally:
        await consumer.stop()
    assert 5 == len(stamps)
    assert all(before <= ts <= after for ts in stamps), (before, stamps, after)
