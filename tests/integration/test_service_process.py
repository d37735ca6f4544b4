"""The real service process against a real broker: delivery, dead letters, crashes, shutdown.

Each test runs `python -m service serve` as a subprocess on fresh topics and checks what a user
of the topics sees: the verdict records, the dead-letter records, the group's committed
offsets, the exit code and the JSON log lines.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

from tests.integration.conftest import (
    PARTITIONS,
    Produced,
    Received,
    ServiceProcess,
    Topics,
    committed_and_end,
    produce,
    read_topics,
    wait_committed_to_end,
)
from tests.service.claims import (
    BIRTH_DATE,
    FLAGGED_CODES,
    MEMBER_ID,
    claim_event,
    encode,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

SHUTDOWN_BOUND_S = 10  # CLAIMS_SHUTDOWN_TIMEOUT_S given to every service process
KILL_ATTEMPTS = 3
BIG_BATCHES = {"CLAIMS_CONSUMER__BATCH_SIZE": "5000"}
"""Batches that take long to publish: a kill mid-stream mostly lands inside one."""
ASYNCAPI = Path(__file__).resolve().parents[2] / "schemas" / "asyncapi.json"


def _dlq_required_headers() -> list[str]:
    """The headers the AsyncAPI document requires on a dead-letter record."""
    document = orjson.loads(ASYNCAPI.read_bytes())
    required: list[str] = document["components"]["messages"]["claims.dead-letter:Message"][
        "headers"
    ]["required"]
    return required


DLQ_REQUIRED_HEADERS = _dlq_required_headers()


def _claims(prefix: str, count: int, every_flagged: int = 4) -> list[tuple[bytes, bytes]]:
    """`count` claims keyed by claim id; every `every_flagged`-th one is flagged."""
    out = []
    for i in range(count):
        claim_id = f"{prefix}-{i:06d}"
        codes = FLAGGED_CODES if i % every_flagged == 0 else ("64490", "64491", "99213")
        out.append((claim_id.encode(), encode(claim_event(claim_id, codes))))
    return out


def _by_claim(received: list[Received], topics: Topics) -> dict[str, list[dict[str, object]]]:
    verdicts: dict[str, list[dict[str, object]]] = defaultdict(list)
    for r in received:
        if r.topic != topics.dead_letter:
            verdict = r.json()
            verdicts[str(verdict["claim_id"])].append(verdict)
    return verdicts


async def test_every_claim_gets_one_verdict_on_the_right_topic_with_its_key(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], tmp_path: Path
) -> None:
    """N claims in -> N verdicts out; offsets committed to the end; the logs are JSON and
    carry no patient data."""
    claims = _claims("C", 300)
    await produce(kafka_bootstrap, topics.submitted, claims)
    service = ServiceProcess(kafka_bootstrap, topics, tmp_path / "service.log")
    services.append(service)

    received = await read_topics(kafka_bootstrap, topics.outputs, at_least=300)
    committed = await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group)

    assert 300 == len(received)
    assert 300 == sum(committed.values())
    for r in received:
        verdict = r.json()
        assert r.key == str(verdict["claim_id"]).encode()
        flagged = int(str(verdict["claim_id"]).split("-")[1]) % 4 == 0
        assert (topics.flagged if flagged else topics.accepted) == r.topic
        assert ("flagged" if flagged else "accepted") == verdict["verdict"]
        if flagged:
            assert [1, 2] == [f["line_number"] for f in verdict["findings"]]
    service.terminate()
    assert 0 == service.wait(SHUTDOWN_BOUND_S + 5)
    log_text = service.log_path.read_text()
    assert MEMBER_ID not in log_text
    assert BIRTH_DATE not in log_text
    [started] = service.events("service_started")
    assert {"submitted": topics.submitted}.items() <= started["topics"].items()
    assert 300 == len(service.events("verdict"))


async def test_unreadable_events_are_dead_lettered_and_the_stream_goes_on(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], tmp_path: Path
) -> None:
    """Poison records between good ones: each lands in the DLQ with its original bytes, key,
    headers and origin, and every x-dlq-* header the AsyncAPI document requires; every good
    claim still gets its verdict."""
    good = _claims("G", 50)
    not_json = b"{not json " + MEMBER_ID.encode()
    no_claim_id = orjson.dumps({"event_type": "claim.submitted", "claim": {}})
    poison: list[tuple[bytes | None, bytes]] = [
        (b"p-1", not_json),
        (None, b"[1, 2, 3]"),
        (b"p-3", no_claim_id),
    ]
    reasons = {not_json: b"not-json", b"[1, 2, 3]": b"not-an-object", no_claim_id: b"no-claim-id"}
    sent: list[Produced] = []
    sent += await produce(kafka_bootstrap, topics.submitted, good[:25])
    sent += await produce(
        kafka_bootstrap, topics.submitted, poison, headers=[("trace-id", b"t-42")]
    )
    sent += await produce(kafka_bootstrap, topics.submitted, good[25:])
    services.append(ServiceProcess(kafka_bootstrap, topics, tmp_path / "service.log"))

    received = await read_topics(kafka_bootstrap, topics.outputs, at_least=53)
    await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group)

    inputs = {
        (r.partition, r.offset): r
        for r in await read_topics(kafka_bootstrap, [topics.submitted], at_least=len(sent))
    }
    dead = [r for r in received if r.topic == topics.dead_letter]
    assert {"x-dlq-reason", "x-dlq-topic", "x-dlq-offset"} <= set(DLQ_REQUIRED_HEADERS)
    assert 50 == len(_by_claim(received, topics))
    by_value = {r.value: r for r in dead}
    assert {p[1] for p in poison} == set(by_value)
    for record in sent:
        if record.value not in by_value:
            continue
        r = by_value[record.value]
        names = {name for name, _ in r.headers}
        assert set(DLQ_REQUIRED_HEADERS) <= names, set(DLQ_REQUIRED_HEADERS) - names
        assert str(inputs[(record.partition, record.offset)].timestamp).encode() == r.header(
            "x-dlq-timestamp"
        )
        detail = r.header("x-dlq-detail").decode()
        assert 0 < len(detail) <= 200
        assert MEMBER_ID not in detail
        assert record.key == r.key
        assert b"t-42" == r.header("trace-id")
        assert reasons[record.value] == r.header("x-dlq-reason")
        assert (
            topics.submitted.encode(),
            str(record.partition).encode(),
            str(record.offset).encode(),
            topics.group.encode(),
        ) == (
            r.header("x-dlq-topic"),
            r.header("x-dlq-partition"),
            r.header("x-dlq-offset"),
            r.header("x-dlq-group"),
        )
    assert MEMBER_ID not in services[0].log_path.read_text()


async def test_kill_9_mid_stream_then_restart_loses_no_claim(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], tmp_path: Path
) -> None:
    """SIGKILL between publish and commit redelivers: every claim gets at least one verdict,
    some claim really got a second one (the crash landed between publish and commit), and a
    duplicate verdict has the same event_id as the first.

    The kill is sent when more verdicts are out than offsets committed; a batch completely
    published can still slip its commit in before the signal lands, so the kill is repeated on
    the next process (up to KILL_ATTEMPTS) until a redelivery shows."""
    total = 20_000
    await produce(kafka_bootstrap, topics.submitted, _claims("K", total))
    service = ServiceProcess(kafka_bootstrap, topics, tmp_path / "run-0.log", extra=BIG_BATCHES)
    services.append(service)
    redelivered: list[str] = []
    for attempt in range(1, KILL_ATTEMPTS + 1):
        at_kill = await _kill_between_publish_and_commit(
            service, kafka_bootstrap, topics, after=3_000 * attempt
        )
        assert -9 == service.wait(10)
        committed_at_kill, _ = await committed_and_end(
            kafka_bootstrap, topics.submitted, topics.group
        )
        assert sum(committed_at_kill.values()) < total, "the kill came too late to test anything"
        service = ServiceProcess(
            kafka_bootstrap, topics, tmp_path / f"run-{attempt}.log", extra=BIG_BATCHES
        )
        services.append(service)
        # The new process starts at the committed offsets: past the kill point, any batch
        # published but not committed has been published again.
        received = await read_topics(kafka_bootstrap, topics.outputs, at_least=at_kill + 1_000)
        redelivered = [c for c, copies in _by_claim(received, topics).items() if len(copies) > 1]
        if redelivered:
            break
    assert redelivered, "no claim was published twice: no kill landed between publish and commit"

    await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group, timeout_s=90)
    received = await read_topics(kafka_bootstrap, topics.outputs, at_least=total)
    verdicts = _by_claim(received, topics)
    assert {f"K-{i:06d}" for i in range(total)} == set(verdicts)
    for claim_id, copies in verdicts.items():
        assert 1 == len({v["event_id"] for v in copies}), claim_id
    service.terminate()
    assert 0 == service.wait(SHUTDOWN_BOUND_S + 5)


async def _kill_between_publish_and_commit(
    service: ServiceProcess, bootstrap: str, topics: Topics, *, after: int, timeout_s: float = 60
) -> int:
    """SIGKILL `service` as soon as the output topics hold at least `after` records and more
    than the group has committed (a batch published, its offsets not yet committed); the
    number of output records then.

    The outputs are counted before the commits are read, so "more" holds at the later read."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        outputs = [TopicPartition(t, p) for t in topics.outputs for p in range(PARTITIONS)]
        inputs = [TopicPartition(topics.submitted, p) for p in range(PARTITIONS)]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            published = sum((await consumer.end_offsets(outputs)).values())
            offsets = await admin.list_consumer_group_offsets(topics.group, partitions=inputs)
            committed = sum(meta.offset for meta in offsets.values() if meta and meta.offset > 0)
            if published >= after and published > committed:
                service.kill()
                return published
            await asyncio.sleep(0.005)
    finally:
        await admin.close()
        await consumer.stop()
    raise AssertionError(f"never more than {after} verdicts ahead of the commits")


async def test_sigterm_mid_stream_commits_exactly_what_was_published_and_exits_0(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], tmp_path: Path
) -> None:
    """SIGTERM: the batch in flight is finished and committed, the process exits 0 within the
    bound, the committed offsets cover exactly the claims that have a verdict, and a restart
    finishes the rest without loss or duplicates."""
    total = 20_000
    produced = await produce(kafka_bootstrap, topics.submitted, _claims("T", total))
    first = ServiceProcess(kafka_bootstrap, topics, tmp_path / "first.log")
    services.append(first)
    await read_topics(kafka_bootstrap, topics.outputs, at_least=3_000, timeout_s=60)

    signalled = time.monotonic()
    first.terminate()
    assert 0 == first.wait(SHUTDOWN_BOUND_S + 5)
    assert time.monotonic() - signalled < SHUTDOWN_BOUND_S
    assert first.events("service_stopped")

    committed, ends = await committed_and_end(kafka_bootstrap, topics.submitted, topics.group)
    assert sum(committed.values()) < total, "the signal came too late to test anything"
    done = sum(ends.values())
    received = await read_topics(kafka_bootstrap, topics.outputs, at_least=0)
    judged = set(_by_claim(received, topics))
    # Exactly the claims below the committed offsets have verdicts: nothing published was left
    # uncommitted, and nothing committed was left unpublished.
    expected = {
        p.key.decode() for p in produced if p.key is not None and p.offset < committed[p.partition]
    }
    assert expected == judged
    assert done == total

    second = ServiceProcess(kafka_bootstrap, topics, tmp_path / "second.log")
    services.append(second)
    await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group, timeout_s=90)
    received = await read_topics(kafka_bootstrap, topics.outputs, at_least=total)
    assert total == len(received)  # a clean stop leaves no duplicates
    assert {f"T-{i:06d}" for i in range(total)} == set(_by_claim(received, topics))
    second.terminate()
    assert 0 == second.wait(SHUTDOWN_BOUND_S + 5)


async def test_two_instances_share_the_partitions_and_stopping_one_loses_nothing(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], tmp_path: Path
) -> None:
    """Both members of the group judge claims; after one stops, the other takes over its
    partitions and every claim still gets a verdict."""
    a = ServiceProcess(kafka_bootstrap, topics, tmp_path / "a.log")
    services.append(a)
    await a.wait_assigned()
    b = ServiceProcess(kafka_bootstrap, topics, tmp_path / "b.log")
    services.append(b)
    await b.wait_assigned()  # after the rebalance that gave b its share

    await produce(kafka_bootstrap, topics.submitted, _claims("S", 3_000))
    await read_topics(kafka_bootstrap, topics.outputs, at_least=3_000)
    assert a.events("verdict")
    assert b.events("verdict")
    assert 3_000 == len(a.events("verdict")) + len(b.events("verdict"))

    later = asyncio.create_task(produce(kafka_bootstrap, topics.submitted, _claims("S2", 10_000)))
    await asyncio.sleep(0.5)
    a.terminate()
    assert 0 == a.wait(SHUTDOWN_BOUND_S + 5)
    await later
    await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group, timeout_s=90)
    received = await read_topics(kafka_bootstrap, topics.outputs, at_least=13_000)
    expected = {f"S-{i:06d}" for i in range(3_000)} | {f"S2-{i:06d}" for i in range(10_000)}
    assert expected == set(_by_claim(received, topics))


async def test_unreachable_broker_at_start_exits_1_with_a_reason(tmp_path: Path) -> None:
    nowhere = Topics("in", "ok", "bad", "dlq", "group")
    service = ServiceProcess("127.0.0.1:9", nowhere, tmp_path / "service.log")
    code = service.wait(60)
    assert 1 == code
    [failed] = service.events("startup_failed")
    assert failed["error"] in ("ConnectionRefusedError", "KafkaConnectionError")
    assert failed["error_detail"].startswith("no Kafka broker answered at 127.0.0.1:9 (")
    assert "\n" not in failed["error_detail"]
    # What was opened is closed: no unclosed-client complaint after the reason.
    assert "Unclosed" not in service.log_path.read_text()


async def test_bad_configuration_exits_before_connecting_and_names_the_variable(
    tmp_path: Path,
) -> None:
    nowhere = Topics("in", "ok", "bad", "dlq", "group")
    service = ServiceProcess(
        "127.0.0.1:9",
        nowhere,
        tmp_path / "service.log",
        extra={"CLAIMS_CONSUMER__BATCH_SIZE": "0", "CLAIMS_LOG__LEVEL": "LOUD"},
    )
    code = service.wait(60)
    output = service.log_path.read_text()
    assert 3 == code  # the CLI's exit code for a bad configuration
    assert "CLAIMS_CONSUMER__BATCH_SIZE" in output
    assert "CLAIMS_LOG__LEVEL" in output
