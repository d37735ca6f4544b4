"""The real service process, watched the way an operator does: over HTTP, while claims flow.

`python -m service serve` runs against the real broker with its HTTP port on a free local
port. The test scrapes `/metrics` and probes `/health/*` with plain HTTP requests, publishes
valid, flagged and unreadable events, and checks that the numbers move by exactly what the
service published (counted from the output topics), that the consumer lag is reported per
partition and drains to 0, and that SIGTERM still ends the process with 0.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.tables import default_table
from tests.integration.conftest import (
    PARTITIONS,
    Received,
    ServiceProcess,
    Topics,
    produce,
    read_topics,
    wait_committed_to_end,
)
from tests.service.claims import FLAGGED_CODES, claim_event, encode

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

SHUTDOWN_BOUND_S = 10  # CLAIMS_SHUTDOWN_TIMEOUT_S of ServiceProcess
BATCH_SIZE = 10
"""Small batches: a backlog takes many batches to drain, so the lag is seen above 0."""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def scrape(port: int) -> Samples:
    status, body = await http_get(port, "/metrics")
    assert 200 == status
    out: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def lag(samples: Samples, topic: str) -> dict[int, float]:
    return {
        int(dict(labels)["partition"]): v
        for (name, labels), v in samples.items()
        if name == "claims_validator_consumer_lag" and dict(labels)["topic"] == topic
    }


def handled(samples: Samples) -> float:
    return get(samples, "claims_validator_batch_records_sum")


def lot(prefix: str, count: int) -> list[tuple[bytes | None, bytes]]:
    """Per 10 records: 6 accepted, 3 flagged, 1 unreadable (not JSON, or a JSON array)."""
    out: list[tuple[bytes | None, bytes]] = []
    for i in range(count):
        claim_id = f"{prefix}-{i:05d}"
        kind = i % 10
        if kind < 6:
            out.append((claim_id.encode(), encode(claim_event(claim_id))))
        elif kind < 9:
            out.append((claim_id.encode(), encode(claim_event(claim_id, FLAGGED_CODES))))
        elif i % 20 == 9:
            out.append((claim_id.encode(), b"{not json " + claim_id.encode()))
        else:
            out.append((claim_id.encode(), b"[1, 2, 3]"))
    return out


def published(
    received: list[Received], topics: Topics
) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """(verdicts by verdict, findings by rule id, dead letters by reason) on the topics."""
    verdicts: Counter[str] = Counter()
    findings: Counter[str] = Counter()
    dead: Counter[str] = Counter()
    for r in received:
        if r.topic == topics.dead_letter:
            dead[r.header("x-dlq-reason").decode()] += 1
        else:
            verdict = r.json()
            verdicts[verdict["verdict"]] += 1
            findings.update(f["rule_id"] for f in verdict["findings"])
    return verdicts, findings, dead


async def wait_until(
    what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 60
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)


async def test_metrics_and_health_move_as_claims_flow_and_sigterm_exits_0(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], tmp_path: Path
) -> None:
    first = lot("M", 1500)
    await produce(kafka_bootstrap, topics.submitted, first)  # a backlog before the start
    port = _free_port()
    service = ServiceProcess(
        kafka_bootstrap,
        topics,
        tmp_path / "service.log",
        extra={"CLAIMS_HTTP__PORT": str(port), "CLAIMS_CONSUMER__BATCH_SIZE": str(BATCH_SIZE)},
    )
    services.append(service)

    async def live() -> bool:
        if service.proc.poll() is not None:
            raise AssertionError(f"service exited {service.proc.returncode}")
        try:
            return (await http_get(port, "/health/live"))[0] == 200
        except OSError:
            return False

    await wait_until("/health/live answers 200", live, timeout_s=30)

    # While the backlog drains: the lag per partition is reported, above 0, and it falls.
    highest: dict[int, float] = {}

    async def drained() -> bool:
        samples = await scrape(port)
        for partition, value in lag(samples, topics.submitted).items():
            highest[partition] = max(highest.get(partition, 0.0), value)
        return handled(samples) >= len(first)

    await wait_until("the backlog handled", drained)
    received = await read_topics(kafka_bootstrap, topics.outputs, at_least=len(first))
    await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group)
    after_first = await scrape(port)

    assert set(range(PARTITIONS)) == set(highest), "lag reported for every partition"
    assert sum(highest.values()) > 0, "the backlog showed as lag"
    assert dict.fromkeys(range(PARTITIONS), 0.0) == lag(after_first, topics.submitted)

    verdicts, findings, dead = published(received, topics)
    assert {"accepted": 900, "flagged": 450} == verdicts
    assert {"not-json": 75, "not-an-object": 75} == dead
    assert {"ADDON_WITHOUT_PRIMARY": 900} == findings
    for verdict, count in verdicts.items():
        assert count == get(after_first, "claims_validator_verdicts_total", verdict=verdict)
    for rule_id, count in findings.items():
        assert count == get(
            after_first, "claims_validator_findings_total", rule_id=rule_id, severity="error"
        )
    for reason, count in dead.items():
        assert count == get(after_first, "claims_validator_dead_letters_total", reason=reason)
    batches = get(after_first, "claims_validator_batch_duration_seconds_count")
    assert len(first) / BATCH_SIZE <= batches <= len(first)
    received_total = {
        "app_name": "claims-validator",
        "broker": "kafka",
        "handler": topics.submitted,
    }
    assert len(first) == get(after_first, "faststream_received_messages_total", **received_total)
    table = default_table()
    assert 1.0 == get(
        after_first,
        "claims_validator_rule_table_info",
        version=table.version,
        digest=table.digest,
    )

    status, body = await http_get(port, "/health/ready")
    assert 200 == status, body
    assert {"status": "ready", "failed": []}.items() <= orjson.loads(body).items()

    # A second, small lot moves every counter by exactly its own amounts.
    second = lot("N", 20)  # 12 accepted, 6 flagged (12 findings), 1 not JSON, 1 array
    await produce(kafka_bootstrap, topics.submitted, second)

    async def second_handled() -> bool:
        return handled(await scrape(port)) >= len(first) + len(second)

    await wait_until("the second lot handled", second_handled)
    await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group)
    after_second = await scrape(port)

    def moved(name: str, **labels: str) -> float:
        return get(after_second, name, **labels) - get(after_first, name, **labels)

    assert 12 == moved("claims_validator_verdicts_total", verdict="accepted")
    assert 6 == moved("claims_validator_verdicts_total", verdict="flagged")
    assert 12 == moved(
        "claims_validator_findings_total", rule_id="ADDON_WITHOUT_PRIMARY", severity="error"
    )
    assert 1 == moved("claims_validator_dead_letters_total", reason="not-json")
    assert 1 == moved("claims_validator_dead_letters_total", reason="not-an-object")
    assert dict.fromkeys(range(PARTITIONS), 0.0) == lag(after_second, topics.submitted)

    service.terminate()
    assert 0 == service.wait(SHUTDOWN_BOUND_S + 5)
    with pytest.raises(ConnectionRefusedError):
        await http_get(port, "/health/live")
    assert [port] == [e["port"] for e in service.events("http_started")]
