"""Poison records: one of each kind, then good claims behind it on the same partition.

Expected outcome for every kind: the poison record ends as a verdict (a readable claim over a
limit gets a flagged verdict with CLAIM_MALFORMED) or as a dead letter with an x-dlq-reason;
none is skipped silently, none stalls the partition: every good claim behind it is judged and
the group's committed offsets reach the end offsets.
"""

from __future__ import annotations

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
from tests.faults.streams import claim_records, wait_committed
from tests.integration.conftest import (
    ServiceProcess,
    Topics,
    read_topics,
)
from tests.service.claims import claim_event, encode

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.timeout(180)]

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


async def _header_key_not_utf8(bootstrap: str, topic: str, key: bytes) -> None:
    await produce_raw_header_key(bootstrap, topic, key, _good(key.decode()), PARTITION)


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
    "header-key-not-utf8": _header_key_not_utf8,
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
