"""The service with its claim history on: real Apache Kafka, real PostgreSQL, real processes.

Duplicates and corrections; frequency windows at their boundary days; redelivery after kill -9
gives identical verdicts; two instances racing on one member; a database restart mid-stream
loses nothing and publishes nothing without history. Claims whose verdicts depend on order are
produced in waves: each wave only after the previous one's verdicts are out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from service.engine import HISTORY_RULE_IDS
from tests.integration.conftest import (
    Received,
    ServiceProcess,
    Topics,
    produce,
    read_topics,
    wait_committed_to_end,
)
from tests.integration.history_fixtures import history_env
from tests.integration.test_observability import _free_port, http_get
from tests.postgres import LocalPostgres, new_database
from tests.unit.casebook import build_claim

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


def event(claim_id: str, member: str, *, payer: str = "AETNA", event_id: str | None = None,
          **line: Any) -> tuple[bytes, bytes]:
    claim = build_claim({
        "claim_id": claim_id, "payer_id": payer,
        "patient": {"member_id": member, "birth_date": "1951-07-14"},
        "service_lines": [{"modifiers": ["KX"] if payer == "MEDICARE" else [], **line}],
    })
    body = {"event_id": event_id or f"ev-{uuid.uuid4()}", "event_type": "claim.submitted",
            "schema_version": 1, "occurred_at": "2025-03-04T15:02:11Z", "claim": claim}
    return claim_id.encode(), orjson.dumps(body)


def verdicts(received: list[Received], topics: Topics) -> list[dict[str, Any]]:
    return [
        orjson.loads(r.value) for r in received
        if r.topic in (topics.accepted, topics.flagged) and r.value
    ]


class Stream:
    """Produces waves and waits for their verdicts."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self.bootstrap, self.topics, self.sent = bootstrap, topics, 0

    async def wave(self, records: list[tuple[bytes, bytes]], timeout_s: float = 60) -> list[
            dict[str, Any]]:
        await produce(self.bootstrap, self.topics.submitted, records)
        self.sent += len(records)
        got = await read_topics(
            self.bootstrap, self.topics.outputs, at_least=self.sent, timeout_s=timeout_s
        )
        return verdicts(got, self.topics)


def rules(v: dict[str, Any]) -> list[str]:
    """The verdict's cross-claim findings (the claims are built to trip no other error)."""
    return [f["rule_id"] for f in v["findings"] if f["rule_id"] in HISTORY_RULE_IDS]


def serve(services: list[ServiceProcess], bootstrap: str, topics: Topics, tmp_path: Path,
          dsn: str, name: str = "service", **extra: str) -> ServiceProcess:
    service = ServiceProcess(
        bootstrap, topics, tmp_path / f"{name}.log", {**history_env(dsn), **extra}
    )
    services.append(service)
    return service


async def test_duplicates_corrections_and_redelivery_with_no_phi_stored_or_logged(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], history_dsn: str,
    tmp_path: Path,
) -> None:
    service = serve(services, kafka_bootstrap, topics, tmp_path, history_dsn)
    await service.wait_assigned()
    stream = Stream(kafka_bootstrap, topics)
    first = event("CLM-A", "ZQMEMBER01", event_id="ev-A1")
    out = await stream.wave([first])
    out = await stream.wave([event("CLM-B", "ZQMEMBER01")])
    (b,) = [v for v in out if v["claim_id"] == "CLM-B"]
    assert rules(b) == ["DUPLICATE_CLAIM"]
    assert "CLM-A" in b["findings"][0]["message"]
    # CLM-A corrected (another date): replaces CLM-A's first version in the history.
    out = await stream.wave([event("CLM-A", "ZQMEMBER01", service_date="2025-03-05")])
    assert [rules(v) for v in out if v["claim_id"] == "CLM-A"] == [[], []]
    out = await stream.wave([event("CLM-C", "ZQMEMBER01")])
    (c,) = [v for v in out if v["claim_id"] == "CLM-C"]
    assert rules(c) == ["DUPLICATE_CLAIM"]
    assert "CLM-B" in c["findings"][0]["message"]  # CLM-A's content is now the correction's
    # The same member at another payer is another member: nothing repeats.
    out = await stream.wave([event("CLM-D", "ZQMEMBER01", payer="CIGNA")])
    assert [rules(v) for v in out if v["claim_id"] == "CLM-D"] == [[]]
    # The first event redelivered: judged against what came before its first sighting.
    out = await stream.wave([first])
    again = [v for v in out if v["causation_id"] == "ev-A1"]
    assert len(again) == 2
    assert again[0] | {"occurred_at": None} == again[1] | {"occurred_at": None}
    assert rules(again[1]) == []
    await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group)

    connection = await asyncpg.connect(history_dsn)
    try:
        stored = "\n".join(
            repr(dict(r)) for r in await connection.fetch("SELECT * FROM claims_history.claims")
        )
    finally:
        await connection.close()
    log = service.log_path.read_text()
    for secret in ("ZQMEMBER01", "1951-07-14"):
        assert secret not in stored
        assert secret not in log
    assert "CLM-B" in stored


def sessions(member: str, last_day: str, prefix: str, code: str = "64490") -> tuple[
        list[tuple[bytes, bytes]], tuple[bytes, bytes]]:
    earlier = [
        event(f"{prefix}-{i}", member, payer="MEDICARE", procedure_code=code, service_date=day)
        for i, day in enumerate(("2025-01-10", "2025-04-10", "2025-07-10", "2025-10-10"), 1)
    ]
    last = event(f"{prefix}-5", member, payer="MEDICARE", service_date=last_day)
    return earlier, last


async def test_frequency_window_boundary_days_per_region(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], history_dsn: str,
    tmp_path: Path,
) -> None:
    service = serve(services, kafka_bootstrap, topics, tmp_path, history_dsn)
    await service.wait_assigned()
    day365, last365 = sessions("ZQMEMBER11", "2026-01-09", "CLM-D365")
    day366, last366 = sessions("ZQMEMBER12", "2026-01-10", "CLM-D366")
    lumbar, cervical = sessions("ZQMEMBER13", "2025-12-01", "CLM-REGION", code="64493")
    stream = Stream(kafka_bootstrap, topics)
    await stream.wave(day365 + day366 + lumbar)
    out = await stream.wave([last365, last366, cervical])
    by_claim = {v["claim_id"]: v for v in out}
    assert all(rules(v) == [] for k, v in by_claim.items() if not k.endswith("-5"))
    (finding,) = [f for f in by_claim["CLM-D365-5"]["findings"] if f["severity"] == "error"]
    assert finding["rule_id"] == "FREQUENCY_LIMIT"
    assert "2025-01-10 (CLM-D365-1)" in finding["message"]
    assert rules(by_claim["CLM-D366-5"]) == []  # day 366: the first session is out
    assert rules(by_claim["CLM-REGION-5"]) == []  # lumbar sessions, a cervical claim


def members_sessions(prefix: str, members: int) -> list[tuple[bytes, bytes]]:
    """Six sessions within a year for each member: whichever two come last are over four."""
    days = ("2025-01-10", "2025-03-10", "2025-05-10", "2025-07-10", "2025-09-10", "2025-11-10")
    return [
        event(f"{prefix}-{m}-{i}", f"ZQRACE{prefix}{m:03d}", payer="MEDICARE", service_date=d)
        for m in range(members) for i, d in enumerate(days)
    ]


def over_limit_per_member(out: list[dict[str, Any]]) -> Counter[str]:
    firsts = {v["causation_id"]: v for v in out}  # one verdict per event
    return Counter(
        v["claim_id"].rsplit("-", 1)[0] for v in firsts.values()
        if "FREQUENCY_LIMIT" in rules(v)
    )


async def test_redelivery_after_kill_9_gives_identical_verdicts(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], history_dsn: str,
    tmp_path: Path,
) -> None:
    records = members_sessions("K", 40)
    small = {"CLAIMS_CONSUMER__BATCH_SIZE": "10"}
    first = serve(services, kafka_bootstrap, topics, tmp_path, history_dsn, "first", **small)
    await first.wait_assigned()
    await produce(kafka_bootstrap, topics.submitted, records)
    await first.wait_for(lambda line: line.get("event") == "verdict", "a verdict")
    first.kill()
    first.wait(10)
    second = serve(services, kafka_bootstrap, topics, tmp_path, history_dsn, "second", **small)
    await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group, 120)
    second.stop()
    # Everything again, as a new consumer group would see it: every event redelivered.
    replay = dataclasses.replace(topics, group=topics.group + "-replay")
    third = ServiceProcess(
        kafka_bootstrap, replay, tmp_path / "third.log", history_env(history_dsn)
    )
    services.append(third)
    await wait_committed_to_end(kafka_bootstrap, topics.submitted, replay.group, 120)
    out = verdicts(
        await read_topics(kafka_bootstrap, topics.outputs, at_least=2 * len(records)), topics
    )
    by_event: dict[str, list[dict[str, Any]]] = {}
    for v in out:
        by_event.setdefault(v["causation_id"], []).append(v | {"occurred_at": None})
    assert len(by_event) == len(records)
    assert all(len(vs) >= 2 and all(v == vs[0] for v in vs) for vs in by_event.values())
    assert over_limit_per_member(out) == Counter({f"K-{m}": 2 for m in range(40)})


async def test_two_instances_racing_on_one_member_never_both_miss(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], history_dsn: str,
    tmp_path: Path,
) -> None:
    one = serve(services, kafka_bootstrap, topics, tmp_path, history_dsn, "one")
    two = serve(services, kafka_bootstrap, topics, tmp_path, history_dsn, "two")
    for service in (one, two):
        await service.wait_assigned()
        await service.wait_for(lambda line: line.get("event") == "history_connected", "schema")
    # The same claim under 60 ids, spread over the partitions both instances hold. The test
    # holds the claims table while both instances' batches arrive, so their round trips are
    # in the database at the same moment; releasing it lets them race.
    records = [event(f"CLM-RACE-{i:03d}", "ZQRACER001") for i in range(60)]
    gate = await asyncpg.connect(history_dsn)
    try:
        held = gate.transaction()
        await held.start()
        await gate.execute("LOCK TABLE claims_history.claims IN ACCESS EXCLUSIVE MODE")
        await produce(kafka_bootstrap, topics.submitted, records)
        deadline = time.monotonic() + 30
        while await gate.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND pid <> pg_backend_pid() AND datname = current_database()"
        ) < 2:
            assert time.monotonic() < deadline, "both instances' batches never reached the table"
            await asyncio.sleep(0.05)
        await held.commit()
    finally:
        await gate.close()
    await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group, 120)
    out = verdicts(
        await read_topics(kafka_bootstrap, topics.outputs, at_least=len(records)), topics
    )
    assert Counter(tuple(rules(v)) for v in out) == {(): 1, ("DUPLICATE_CLAIM",): 59}
    assert one.events("verdict")  # both instances judged claims
    assert two.events("verdict")


async def test_a_database_restart_mid_stream_loses_nothing_and_publishes_nothing_without_it(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], tmp_path: Path,
) -> None:
    # A server of its own on a free port, stopped at the end: a server some other run left on a
    # fixed port would answer instead, and stopping ours would then change nothing.
    server = LocalPostgres(_free_port(), "postgres-restart-test")
    dsn = await new_database(server.start())
    port = _free_port()
    service = serve(services, kafka_bootstrap, topics, tmp_path, dsn,
                    CLAIMS_HTTP__PORT=str(port))
    await service.wait_assigned()
    stream = Stream(kafka_bootstrap, topics)
    await stream.wave([event(f"CLM-UP-{i}", f"ZQDOWN{i:03d}") for i in range(20)])
    server.stop()
    try:
        await produce(kafka_bootstrap, topics.submitted,
                      [event(f"CLM-DOWN-{i}", f"ZQDOWN{i:03d}") for i in range(20)])
        deadline = time.monotonic() + 60  # a loaded CI machine: the stop and the probes are slow
        while True:
            status, body = await http_get(port, "/health/ready")
            checks = orjson.loads(body)["checks"]
            if status == 503 and checks["history"] != "ok":
                break
            assert time.monotonic() < deadline, orjson.dumps(checks).decode()
            await asyncio.sleep(0.5)
        assert "history database" in checks["history"]
        await asyncio.sleep(2)
        held = verdicts(
            await read_topics(kafka_bootstrap, topics.outputs, at_least=20), topics
        )
        assert len(held) == 20  # nothing judged while the history is away
    finally:
        server.start()
    out = verdicts(await read_topics(kafka_bootstrap, topics.outputs, at_least=40), topics)
    down = [v for v in out if v["claim_id"].startswith("CLM-DOWN")]
    assert len(down) == 20
    assert all(rules(v) == ["DUPLICATE_CLAIM"] for v in down)
    await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group)
    assert service.events("history_unavailable")
    assert service.events("history_recovered")
    status, _ = await http_get(port, "/health/ready")
    assert status == 200
    service.stop()
    server.stop()


async def test_with_history_off_the_service_says_once_which_rules_it_skips(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], tmp_path: Path,
) -> None:
    service = ServiceProcess(kafka_bootstrap, topics, tmp_path / "off.log")
    services.append(service)
    await service.wait_assigned()
    await produce(kafka_bootstrap, topics.submitted, [event("CLM-OFF-1", "ZQOFF1"),
                                                      event("CLM-OFF-2", "ZQOFF1")])
    out = verdicts(await read_topics(kafka_bootstrap, topics.outputs, at_least=2), topics)
    assert [rules(v) for v in out] == [[], []]  # the same claim twice: not judged without history
    (note,) = service.events("history_off")
    assert note["skipped_rules"] == ["DUPLICATE_CLAIM", "DUPLICATE_LINE", "FREQUENCY_LIMIT"]
