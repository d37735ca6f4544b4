"""Publish through aiokafka's batch API: keyed records packed per partition where the Java
client would put them, in order; failed batches resent with only the later records of their keys;
oversized records falling back; batches handed over while later records are judged.

The producer is a fake with the batch API (`create_batch()` / `send_batch()`); the real-broker
counterpart is tests/integration/test_publishing_kafka.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    UnknownTopicOrPartitionError,
)
from aiokafka.partitioner import DefaultPartitioner  # type: ignore[import-untyped]
from structlog.testing import capture_logs

from service.packing import CHUNK
from service.producers import Producer
from service.publishing import BatchPublisher
from service.routing import OutRecord
from tests.service.claims import FLAGGED_CODES, claim_event, encode
from tests.service.conftest import RunApp
from tests.service.fakes import RecordingProducer, Sent

IN = "claims.submitted"


# ------------------------------------------------ the batch path (aiokafka's batch API) ----


class FakeBatch:
    """aiokafka's `BatchBuilder` contract: `append()` returns None once `capacity` records are
    in (an empty batch takes any record) or after `close()`; headers must be a list."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]] = []
        self.closed = False

    def append(
        self,
        *,
        timestamp: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> object | None:
        if not isinstance(headers, list):
            raise TypeError(
                f"Argument 'headers' has incorrect type (expected list, got {headers!r})"
            )
        if self.closed or len(self.records) >= self.capacity:
            return None
        self.records.append((key, value, tuple(headers)))
        return object()

    def close(self) -> None:
        self.closed = True


BatchFailure = Callable[[int, str, int, FakeBatch], "BaseException | None"]


class BatchingProducer(RecordingProducer):
    """A producer with the batch API: `acked` gets a batch's records when it is acknowledged.

    `fail_batch(batch_number, topic, partition, batch)` picks batches whose acknowledgement
    fails (or, with `raise_on_send_batch`, whose `send_batch()` raises);
    `fail_partitions(call_number)` makes `partitions_for()` raise; `hold` (when cleared) keeps
    every acknowledgement back. Keyless records go through the inherited `send()`."""

    def __init__(
        self,
        partitions: int = 3,
        *,
        capacity: int = 1_000,
        fail_batch: BatchFailure | None = None,
        raise_on_send_batch: bool = False,
        fail_partitions: Callable[[int], BaseException | None] | None = None,
    ) -> None:
        super().__init__()
        self.partitions = partitions
        self.capacity = capacity
        self._fail_batch = fail_batch
        self._raise_on_send_batch = raise_on_send_batch
        self._fail_partitions = fail_partitions
        self.partition_lookups = 0
        self.batches: list[tuple[str, int, FakeBatch]] = []
        self.placed: list[tuple[str, int, bytes | None, bytes | None]] = []
        """(topic, partition, key, value) of every acknowledged batched record."""
        self.hold = asyncio.Event()
        self.hold.set()
        self.on_send_batch: Callable[[], None] = lambda: None

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def partitions_for(self, topic: str) -> set[int]:
        self.partition_lookups += 1
        error = self._fail_partitions(self.partition_lookups) if self._fail_partitions else None
        if error is not None:
            raise error
        return set(range(self.partitions))

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        assert 0 <= partition < self.partitions, "Unrecognized partition"
        self.on_send_batch()
        self.batches.append((topic, partition, batch))
        error = (
            self._fail_batch(len(self.batches), topic, partition, batch)
            if self._fail_batch
            else None
        )
        if error is not None and self._raise_on_send_batch:
            raise error
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def acknowledge() -> None:
            await self.hold.wait()
            if error is not None:
                future.set_exception(error)
                return
            for key, value, headers in batch.records:
                self.acked.append(Sent(topic, key, value, headers))
                self.placed.append((topic, partition, key, value))
            future.set_result(None)

        if self.hold.is_set():
            await acknowledge()
        else:
            asyncio.get_running_loop().create_task(acknowledge())
        return future


def _publisher(producer: Producer, *, max_request_size: int = 1_048_576) -> BatchPublisher:
    async def no_sleep(_: float) -> None:
        return None

    return BatchPublisher(
        lambda: producer,
        initial_backoff_s=0.5,
        max_backoff_s=3.0,
        sleep=no_sleep,
        max_request_size=max_request_size,
    )


def _java_partition(key: bytes, partitions: int = 3) -> int:
    everything = list(range(partitions))
    partition: int = DefaultPartitioner()(key, everything, everything)
    return partition


def _keys_on_distinct_partitions() -> tuple[bytes, bytes]:
    keys = [f"CLM-{i}".encode() for i in range(50)]
    first = keys[0]
    other = next(k for k in keys if _java_partition(k) != _java_partition(first))
    return first, other


async def test_keyed_records_are_packed_where_the_java_client_would_put_them_in_order() -> None:
    """600 verdicts over two topics, some claims twice: each lands on its key's default
    partition, nothing goes through send(), and each partition keeps the input order."""
    producer = BatchingProducer()
    records = [
        OutRecord(
            "claims.flagged" if i % 4 == 0 else "claims.accepted",
            f"CLM-{i % 450}".encode(),
            f"verdict-{i}".encode(),
            (("content-type", b"application/json"),),
        )
        for i in range(600)
    ]
    assert 1 == (await _publisher(producer).publish(records)).attempts

    assert 0 == producer.sends
    assert sorted(r.value or b"" for r in records) == sorted(v or b"" for *_, v in producer.placed)
    for _, partition, key, _ in producer.placed:
        assert key is not None
        assert _java_partition(key) == partition, key
    for topic in ("claims.accepted", "claims.flagged"):
        for partition in range(3):
            expected = [
                r.value
                for r in records
                if r.topic == topic and r.key and _java_partition(r.key) == partition
            ]
            assert expected == [v for t, p, _, v in producer.placed if (t, p) == (topic, partition)]
    assert {(("content-type", b"application/json"),)} == {s.headers for s in producer.acked}


async def test_a_record_without_a_key_goes_through_send_and_its_default_partitioner() -> None:
    producer = BatchingProducer()
    records = [
        OutRecord("claims.accepted", b"CLM-1", b"v1", ()),
        OutRecord("claims.dead-letter", None, b"<not json>", (("x-dlq-reason", b"not-json"),)),
    ]
    await _publisher(producer).publish(records)

    assert 1 == producer.sends
    assert [("claims.accepted", b"CLM-1")] == [(t, k) for t, _, k, _ in producer.placed]
    assert Sent("claims.dead-letter", None, b"<not json>", (("x-dlq-reason", b"not-json"),)) in (
        producer.acked
    )


async def test_a_full_batch_is_sent_and_the_next_one_started_keeping_the_order() -> None:
    producer = BatchingProducer(capacity=4)
    records = [OutRecord("t", b"CLM-1", f"v{i}".encode(), ()) for i in range(10)]
    await _publisher(producer).publish(records)

    assert [4, 4, 2] == [len(b.records) for _, _, b in producer.batches]
    assert [r.value for r in records] == [s.value for s in producer.acked]


async def test_a_failed_batch_is_resent_with_the_later_records_of_its_keys_only() -> None:
    """One record per batch; the first batch of key A fails once: A-1 is sent again, then A-2
    again (its later record), so A's newest record is acknowledged last; B is not resent."""
    key_a, key_b = _keys_on_distinct_partitions()
    failed: list[int] = []

    def fail_first_a(number: int, _t: str, _p: int, batch: FakeBatch) -> BaseException | None:
        if batch.records[0][1] == b"A-1" and not failed:
            failed.append(number)
            return NotLeaderForPartitionError()
        return None

    producer = BatchingProducer(capacity=1, fail_batch=fail_first_a)
    records = [
        OutRecord("t", key_a, b"A-1", ()),
        OutRecord("t", key_b, b"B", ()),
        OutRecord("t", key_a, b"A-2", ()),
    ]
    with capture_logs() as logs:
        assert 2 == (await _publisher(producer).publish(records)).attempts

    assert 5 == len(producer.batches)  # 3 + (A-1, A-2) again
    values_of_a = [s.value for s in producer.acked if s.key == key_a]
    assert [b"A-2", b"A-1", b"A-2"] == values_of_a
    assert [b"B"] == [s.value for s in producer.acked if s.key == key_b]
    [retry] = [e for e in logs if e["event"] == "publish_retry"]
    assert ("NotLeaderForPartitionError", 1, 2) == (
        retry["error"],
        retry["failed"],
        retry["resending"],
    )


async def test_send_batch_raising_is_retried_with_backoff_until_acknowledged() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    producer = BatchingProducer(
        fail_batch=lambda n, *_: KafkaTimeoutError() if n <= 3 else None,
        raise_on_send_batch=True,
    )
    publisher = BatchPublisher(
        lambda: producer, initial_backoff_s=0.5, max_backoff_s=3.0, sleep=sleep
    )
    # One claim: one batch per attempt.
    records = [OutRecord("t", b"CLM-1", f"v{i}".encode(), ()) for i in range(40)]

    assert 4 == (await publisher.publish(records)).attempts
    assert [0.5, 1.0, 2.0] == slept
    assert [r.value for r in records] == [s.value for s in producer.acked]


async def test_unknown_partitions_fail_the_records_of_that_topic_and_are_retried() -> None:
    """No metadata for the topic (aiokafka raises after request_timeout_ms): the records are
    retried once it is there; the lookup is made once per attempt, not once per record."""
    producer = BatchingProducer(
        fail_partitions=lambda n: UnknownTopicOrPartitionError() if n == 1 else None
    )
    records = [OutRecord("t", f"CLM-{i}".encode(), b"v", ()) for i in range(30)]
    with capture_logs() as logs:
        assert 2 == (await _publisher(producer).publish(records)).attempts

    assert 2 == producer.partition_lookups
    assert 30 == len(producer.acked)
    assert ["UnknownTopicOrPartitionError"] == [
        e["error"] for e in logs if e["event"] == "publish_retry"
    ]


async def test_an_oversized_record_fails_as_send_would_and_a_dead_letter_falls_back() -> None:
    """The batch path checks each record's size as `send()` does: an oversized dead letter is
    replaced by its fallback (headers, no value); records around it go out untouched."""
    huge = b"<" + b"x" * 2000
    dead = OutRecord(
        "claims.dead-letter",
        b"K",
        huge,
        (("x-dlq-reason", b"not-json"),),
        fallback=OutRecord(
            "claims.dead-letter",
            b"K",
            b"",
            (("x-dlq-reason", b"not-json"), ("x-dlq-value-dropped", b"2001 bytes")),
        ),
    )
    producer = BatchingProducer()
    records = [OutRecord("claims.accepted", b"CLM-1", b"ok", ()), dead]
    assert 2 == (await _publisher(producer, max_request_size=1000).publish(records)).attempts

    assert [b"ok"] == [s.value for s in producer.acked if s.topic == "claims.accepted"]
    [sent_dead] = [s for s in producer.acked if s.topic == "claims.dead-letter"]
    assert (b"K", b"") == (sent_dead.key, sent_dead.value)
    assert b"2001 bytes" == sent_dead.header("x-dlq-value-dropped")


async def test_publish_returns_only_once_every_batch_is_acknowledged() -> None:
    producer = BatchingProducer()
    producer.hold.clear()
    records = [OutRecord("t", f"CLM-{i}".encode(), b"v", ()) for i in range(10)]
    task = asyncio.create_task(_publisher(producer).publish(records))
    await asyncio.sleep(0.05)

    assert producer.batches  # handed over ...
    assert not task.done()  # ... but not acknowledged: no commit may follow yet
    producer.hold.set()
    assert 1 == (await asyncio.wait_for(task, 5)).attempts
    assert 10 == len(producer.acked)


async def test_batches_go_out_while_later_records_are_judged_once_earlier_ones_are_acked() -> None:
    """Records come from a generator (the handler judges lazily). With prompt
    acknowledgements, the first batches leave after the first CHUNK records, long before the
    last one is judged; with acknowledgements held back, nothing more is handed over until
    the end (handing over more would wait for the broker mid-batch)."""

    async def handed_over_at(producer: BatchingProducer) -> list[int]:
        judged = 0
        seen: list[int] = []
        producer.on_send_batch = lambda: seen.append(judged)

        def records() -> Iterator[OutRecord]:
            nonlocal judged
            for i in range(5 * CHUNK):
                judged += 1
                yield OutRecord("t", f"CLM-{i}".encode(), b"v", ())

        task = asyncio.create_task(_publisher(producer).publish(records()))
        await asyncio.sleep(0.05)
        producer.hold.set()
        await asyncio.wait_for(task, 5)
        return seen

    prompt = BatchingProducer()
    early = [n for n in await handed_over_at(prompt) if n < 5 * CHUNK]
    assert early
    assert CHUNK == early[0]

    held = BatchingProducer()
    held.hold.clear()
    seen = await handed_over_at(held)
    assert {CHUNK, 5 * CHUNK} == set(seen)
    assert 5 * CHUNK == len(held.acked)


async def test_the_service_publishes_through_the_batch_path_end_to_end(run_app: RunApp) -> None:
    """The app with a batching producer: verdicts batched on their claim's partition, the
    unreadable event dead-lettered with its (empty) key, and one verdict line per claim."""
    producer = BatchingProducer()
    values = [
        encode(claim_event("CLM-A")),
        encode(claim_event("CLM-B", FLAGGED_CODES)),
        b"\x00\x01binary",
        encode(claim_event("CLM-C")),
    ]
    with capture_logs() as logs:
        async with run_app(producer=producer) as broker:
            await broker.publish_batch(*values, topic=IN)

    # FastStream's in-memory broker gives a record published without a key the key b"".
    assert {
        ("claims.accepted", _java_partition(b"CLM-A"), b"CLM-A"),
        ("claims.flagged", _java_partition(b"CLM-B"), b"CLM-B"),
        ("claims.accepted", _java_partition(b"CLM-C"), b"CLM-C"),
        ("claims.dead-letter", _java_partition(b""), b""),
    } == {(t, p, k) for t, p, k, _ in producer.placed}
    assert 0 == producer.sends
    [dead] = producer.topic("claims.dead-letter")
    assert (b"\x00\x01binary", b"not-json") == (dead.value, dead.header("x-dlq-reason"))
    assert ["CLM-A", "CLM-B", "CLM-C"] == [e["claim_id"] for e in logs if e["event"] == "verdict"]
