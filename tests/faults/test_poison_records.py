"""Poison records: one of each kind, then good claims behind it on the same partition.

Expected outcome for every kind aiokafka can read: the poison record ends as a verdict (a
readable claim over a limit gets a flagged verdict with CLAIM_MALFORMED) or as a dead letter with
an x-dlq-reason; none is skipped silently, none stalls the partition: every good claim behind it
is judged and the group's committed offsets reach the end offsets.

A header KEY that is not UTF-8 is the exception: aiokafka cannot read the record at all, so
there is neither a value to judge nor one to dead-letter. It must not be skipped silently
either: its partition stops at exactly its offset (committed up to it, never past it), the
service says so (readiness 503, claims_validator_stalled 1, a `partition_stopped` line) and
keeps judging the other partitions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

from tests.faults.conftest import FaultBroker, FaultReport
from tests.faults.poison import (
    big_integer_event,
    huge_event,
    many_findings_event,
    produce_raw_header_key,
)
from tests.faults.probes import http_get, http_port, metric, wait_event
from tests.faults.streams import claim_records, wait_committed
from tests.integration.conftest import (
    ServiceProcess,
    Topics,
    committed_and_end,
    read_topics,
)
from tests.service.claims import claim_event, encode

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

SHUTDOWN_BOUND_S = 10  # CLAIMS_SHUTDOWN_TIMEOUT_S of ServiceProcess
GOOD = 50
PARTITION = 0
"""Poison and good claims share a partition: a poison record that stalls its partition holds
back every claim behind it."""


async def _send(
    bootstrap: str,
    topic: str,
    key: bytes,
    value: bytes,
    headers: list[tuple[str, bytes | None]] | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, partition=PARTITION, headers=headers)
    finally:
        await producer.stop()


def _good(claim_id: str) -> bytes:
    return encode(claim_event(claim_id))


async def _header_value_not_utf8(bootstrap: str, topic: str, key: bytes) -> None:
    await _send(bootstrap, topic, key, _good(key.decode()), [("trace-id", b"\xff\xfe\xc3(")])


async def _null_header_value(bootstrap: str, topic: str, key: bytes) -> None:
    await _send(bootstrap, topic, key, _good(key.decode()), [("trace-id", None)])


async def _huge_event(bootstrap: str, topic: str, key: bytes) -> None:
    value = huge_event(key.decode())
    assert 850_000 < len(value) < 1_000_000
    await _send(bootstrap, topic, key, value)


async def _verdict_over_the_limit(bootstrap: str, topic: str, key: bytes) -> None:
    await _send(bootstrap, topic, key, many_findings_event(key.decode()))


async def _integers_beyond_64_bits(bootstrap: str, topic: str, key: bytes) -> None:
    await _send(bootstrap, topic, key, big_integer_event(key.decode()))


POISON: dict[str, Callable[[str, str, bytes], Awaitable[None]]] = {
    "header-value-not-utf8": _header_value_not_utf8,
    "null-header-value": _null_header_value,
    "huge-event-300k-empty-lines": _huge_event,
    "verdict-over-the-message-limit": _verdict_over_the_limit,
    "integers-beyond-64-bits": _integers_beyond_64_bits,
}
OVER_A_LIMIT = {"huge-event-300k-empty-lines", "verdict-over-the-message-limit"}
"""Readable claims over a limit: if judged, a flagged verdict with CLAIM_MALFORMED."""


@pytest.mark.parametrize("kind", list(POISON))
async def test_a_poison_record_ends_as_a_verdict_or_dead_letter_and_the_claims_behind_it_are_judged(
    kind: str,
    fault_broker: FaultBroker,
    fault_topics: Topics,
    services: list[ServiceProcess],
    tmp_path: Path,
    fault_report: FaultReport,
) -> None:
    bootstrap = fault_broker.bootstrap
    poison_id = f"P-{kind}"
    await POISON[kind](bootstrap, fault_topics.submitted, poison_id.encode())
    good = claim_records("G", 0, GOOD)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for key, value in good:
            await producer.send(fault_topics.submitted, value, key=key, partition=PARTITION)
        await producer.flush()
    finally:
        await producer.stop()

    started = time.monotonic()
    service = ServiceProcess(bootstrap, fault_topics, tmp_path / "service.log")
    services.append(service)
    try:
        await wait_committed(bootstrap, fault_topics, 45)
    finally:
        received = await read_topics(bootstrap, fault_topics.outputs, at_least=0)
        verdicts = {
            str(r.json()["claim_id"]): r.json()
            for r in received
            if r.topic != fault_topics.dead_letter
        }
        dead = [r for r in received if r.topic == fault_topics.dead_letter]
        poison_dead = [r for r in dead if r.key == poison_id.encode()]
        good_ids = {key.decode() for key, _ in good}
        fault_report.record(
            f"poison: {kind}",
            claims_in=GOOD + 1,
            verdicts_out=len(verdicts.keys() & (good_ids | {poison_id})),
            dead_letters=len(poison_dead),
            lost=len(
                (good_ids | {poison_id}) - verdicts.keys() - {poison_id if poison_dead else ""}
            ),
            duplicated=len([r for r in received if r.topic != fault_topics.dead_letter])
            - len(verdicts),
            outcome="verdict"
            if poison_id in verdicts
            else "dead letter"
            if poison_dead
            else "none",
            duration_s=round(time.monotonic() - started, 1),
        )

    assert good_ids <= verdicts.keys(), "good claims behind the poison record were not judged"
    assert (poison_id in verdicts) != bool(poison_dead), (
        "the poison record ended neither or both ways"
    )
    if poison_dead:
        [letter] = poison_dead
        assert letter.header("x-dlq-reason"), "a dead letter without a reason"
        assert str(PARTITION).encode() == letter.header("x-dlq-partition")
    elif kind in OVER_A_LIMIT:
        verdict = verdicts[poison_id]
        assert "flagged" == verdict["verdict"]
        assert {"CLAIM_MALFORMED"} == {f["rule_id"] for f in verdict["findings"]}
    assert service.proc.poll() is None, f"the service exited {service.proc.returncode}"
    service.terminate()
    assert 0 == service.wait(SHUTDOWN_BOUND_S + 5)


async def test_a_header_key_that_is_not_utf8_stops_its_partition_at_that_offset_and_says_so(
    fault_broker: FaultBroker,
    fault_topics: Topics,
    services: list[ServiceProcess],
    tmp_path: Path,
    fault_report: FaultReport,
) -> None:
    bootstrap = fault_broker.bootstrap
    topic = fault_topics.submitted
    await _send(bootstrap, topic, b"P-before", _good("P-before"))
    bad = await produce_raw_header_key(bootstrap, topic, b"P-bad", _good("P-bad"), PARTITION)
    behind = claim_records("B", 0, GOOD)
    elsewhere = claim_records("G", 0, GOOD)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for key, value in behind:
            await producer.send(topic, value, key=key, partition=PARTITION)
        for key, value in elsewhere:
            await producer.send(topic, value, key=key, partition=PARTITION + 1)
        await producer.flush()
    finally:
        await producer.stop()

    started = time.monotonic()
    service = ServiceProcess(bootstrap, fault_topics, tmp_path / "service.log")
    services.append(service)
    port = await http_port(service)
    stop = await wait_event(service, "partition_stopped", timeout_s=60)
    received = await read_topics(bootstrap, fault_topics.outputs, at_least=GOOD + 1)
    await asyncio.sleep(2)  # time for a record past the stop to show, if one were judged
    committed, ends = await committed_and_end(bootstrap, topic, fault_topics.group)
    status, _ = await http_get(port, "/health/ready")
    stalled = await metric(port, "claims_validator_stalled")
    received = await read_topics(bootstrap, fault_topics.outputs, at_least=GOOD + 1)
    judged = {str(r.json()["claim_id"]) for r in received if r.topic != fault_topics.dead_letter}
    fault_report.record(
        "poison: header-key-not-utf8",
        claims_in=2 * GOOD + 2,
        verdicts_out=len(judged),
        dead_letters=len([r for r in received if r.topic == fault_topics.dead_letter]),
        lost=0,
        duplicated=len(received) - len(judged),
        outcome=f"its partition stopped at offset {stop['offset']}, {GOOD} claims behind it held",
        duration_s=round(time.monotonic() - started, 1),
    )

    assert (topic, PARTITION, bad) == (stop["topic"], stop["partition"], stop["offset"])
    assert bad == committed[PARTITION], "committed past (or short of) the unreadable record"
    assert ends[PARTITION + 1] == committed[PARTITION + 1], "the other partitions stopped too"
    assert {"P-before"} | {key.decode() for key, _ in elsewhere} == judged
    assert 503 == status
    assert 1.0 == stalled
    assert service.proc.poll() is None, "stopped the partition, not the process"
    service.terminate()
    assert 0 == service.wait(SHUTDOWN_BOUND_S + 5)
