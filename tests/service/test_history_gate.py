"""The Kafka handler with its claim history, over an in-memory store: one round trip per batch,
findings from the history, and what a database outage does (nothing published, backoff,
readiness, exit code 7 past the bound)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import pytest

from service.engine.families.history import prior_claim
from service.exitcodes import ExitCode
from service.handlers import ClaimsHandler
from service.history_settings import HistorySettings
from service.historydb.gate import HistoryGate, HistoryUnavailable
from service.historydb.store import Recorded, StoredClaim
from service.lifecycle import Lifecycle
from service.models.history import History
from service.publishing import Published
from service.routing import Outcome, Topics
from service.tables import default_table
from tests.unit.casebook import build_claim

TOPICS = Topics("accepted", "flagged", "dead-letter", "group")
SETTINGS = HistorySettings(
    enabled=True, dsn="postgresql://nowhere/claims", hmac_key="k" * 32,
    retry_initial_s=0.5, retry_max_s=2, give_up_after_s=30,
)


class Record:
    def __init__(self, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.timestamp = "in", 0, offset, 0
        self.key, self.value, self.headers = None, value, ()


def record(offset: int, claim_id: str, member: str = "ZQ9MEMBER77") -> Record:
    claim = build_claim({"claim_id": claim_id,
                         "patient": {"member_id": member, "birth_date": "1951-07-14"}})
    event = {"event_id": f"ev-{claim_id}", "event_type": "claim.submitted", "schema_version": 1,
             "occurred_at": "2025-03-04T15:02:11Z", "claim": claim}
    return Record(offset, orjson.dumps(event))


class MemoryStore:
    """Every earlier claim of the member is its history; `down` makes each call fail."""

    def __init__(self) -> None:
        self.calls: list[list[StoredClaim]] = []
        self.rows: list[StoredClaim] = []
        self.down = False
        self.opened = 0

    async def open(self) -> None:
        if self.down:
            raise ConnectionRefusedError
        self.opened += 1

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        if self.down:
            raise ConnectionRefusedError

    async def record(self, batch: Sequence[StoredClaim]) -> list[Recorded]:
        if self.down:
            raise ConnectionRefusedError
        self.calls.append(list(batch))
        out = []
        for stored in batch:
            earlier = [r for r in self.rows if r.member_key == stored.member_key]
            self.rows.append(stored)
            out.append(Recorded(len(self.rows), History(tuple(
                prior_claim(_claim(r), seq) for seq, r in enumerate(earlier, 1)
            ))))
        return out


def _claim(stored: StoredClaim) -> Any:
    from service.models.events import Claim

    return Claim(**build_claim({"claim_id": stored.claim_id}))


class Collecting:
    def __init__(self) -> None:
        self.batches: list[list[Outcome]] = []

    async def publish(self, items: Iterable[Outcome]) -> Published[Outcome]:
        done = list(items)
        self.batches.append(done)
        return Published(done, 1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def handler(store: MemoryStore, clock: Clock) -> tuple[ClaimsHandler, Collecting, Lifecycle,
                                                       HistoryGate]:
    lifecycle = Lifecycle()
    gate = HistoryGate(store, SETTINGS, lifecycle, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    publisher = Collecting()
    return (
        ClaimsHandler(default_table(), TOPICS, publisher, lifecycle=lifecycle, history=gate),  # type: ignore[arg-type]
        publisher, lifecycle, gate,
    )


async def test_one_round_trip_per_batch_and_the_history_s_findings_are_published() -> None:
    store, clock = MemoryStore(), Clock()
    handle, publisher, _, _ = handler(store, clock)
    await handle([record(0, "CLM-1"), record(1, "CLM-2"), Record(2, b"not json")])
    assert [[c.claim_id for c in call] for call in store.calls] == [["CLM-1", "CLM-2"]]
    (batch,) = publisher.batches
    assert [(o.claim_id, o.rule_ids) for o in batch if o.kind == "verdict"] == [
        ("CLM-1", ()), ("CLM-2", ("DUPLICATE_CLAIM",))
    ]
    assert [o.reason for o in batch if o.kind == "dead_letter"] == ["not-json"]
    stored = repr(store.rows)
    assert "ZQ9MEMBER77" not in stored
    assert "1951-07-14" not in stored


async def test_a_database_outage_publishes_nothing_backs_off_and_readiness_says_so() -> None:
    store, clock = MemoryStore(), Clock()
    handle, publisher, lifecycle, gate = handler(store, clock)
    store.down = True
    for _ in range(3):
        with pytest.raises(HistoryUnavailable):
            await handle([record(0, "CLM-1")])
    assert publisher.batches == []
    assert clock.slept == [0.5, 1.0, 2.0]
    assert (await gate.check()).startswith("history database failing for")
    assert lifecycle.exit_code is None
    store.down = False
    await handle([record(0, "CLM-1")])
    assert [o.claim_id for o in publisher.batches[0]] == ["CLM-1"]
    assert await gate.check() == "ok"
    assert not lifecycle.batch_in_flight


async def test_failing_past_the_bound_stops_the_service_with_exit_code_7() -> None:
    store, clock = MemoryStore(), Clock()
    handle, publisher, lifecycle, _ = handler(store, clock)
    store.down = True
    with pytest.raises(HistoryUnavailable):
        await handle([record(0, "CLM-1")])
    clock.now += SETTINGS.give_up_after_s
    with pytest.raises(HistoryUnavailable):
        await handle([record(0, "CLM-1")])
    assert lifecycle.exit_code == ExitCode.HISTORY_UNAVAILABLE == 7
    assert publisher.batches == []


def test_history_settings_name_what_is_missing() -> None:
    with pytest.raises(ValueError, match="dsn is required"):
        HistorySettings(enabled=True, hmac_key="k" * 32)
    with pytest.raises(ValueError, match="hmac_key of at least 32 characters"):
        HistorySettings(enabled=True, dsn="postgresql://x/y", hmac_key="short")
    assert HistorySettings().enabled is False
