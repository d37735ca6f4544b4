"""The history store against a real PostgreSQL, across the schema upgrade to 0002 (lines as json):
what the previous release stored is still each later claim's history, an instance of the
previous release still records during a rolling upgrade, and a batch costs one statement (no
reset query after it)."""

from __future__ import annotations

from datetime import date

import asyncpg
import orjson
import pytest

from service.history_settings import HistorySettings
from service.historydb import schema
from service.historydb.store import HistoryStore, MemberKeys, StoredClaim
from service.models.events import ClaimSubmitted
from service.models.history import PriorLine
from tests.integration.history_fixtures import HMAC_KEY
from tests.unit.casebook import build_claim

WINDOW_DAYS = 400

# The previous release's call (migration 0001): lines as jsonb, the history as jsonb.
PREVIOUS_CALL = (
    "SELECT idx, seq, history::text FROM claims_history.record_batch("
    "$1, $2, $3, $4, $5, $6, $7::text[]::jsonb[], $8)"
)


def _stored(claim_id: str, *, charge: str = "125.00") -> StoredClaim:
    claim = build_claim({"claim_id": claim_id,
                         "patient": {"member_id": "ZQ9MEMBER77", "birth_date": "1951-07-14"}})
    for line in claim["service_lines"]:
        line["charge_amount"] = charge
    event = ClaimSubmitted.model_validate({
        "event_id": f"ev-{claim_id}", "event_type": "claim.submitted", "schema_version": 1,
        "occurred_at": "2025-03-04T15:02:11Z", "claim": claim,
    })
    return StoredClaim.of(event, MemberKeys(HMAC_KEY))


def _args(batch: list[StoredClaim]) -> list[object]:
    return [
        [c.event_id for c in batch], [c.member_key for c in batch],
        [c.claim_id for c in batch], [c.content_key for c in batch],
        [c.first_date for c in batch], [c.last_date for c in batch],
        [c.lines for c in batch], WINDOW_DAYS,
    ]


def _store(dsn: str) -> HistoryStore:
    settings = HistorySettings(enabled=True, dsn=dsn, hmac_key=HMAC_KEY, ssl_mode="disable")
    return HistoryStore(settings, WINDOW_DAYS)


async def test_an_upgrade_from_0001_keeps_the_history_and_the_previous_release_s_call(
    history_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _stored("CLM-UP-1")
    connection = await asyncpg.connect(history_dsn)
    try:
        # A database of the previous release, holding one claim it recorded.
        previous_release = schema.shipped_migrations()[:1]
        with monkeypatch.context() as patch:
            patch.setattr(schema, "shipped_migrations", lambda: previous_release)
            assert ["0001_claim_history"] == await schema.migrate(connection)
        rows = await connection.fetch(PREVIOUS_CALL, *_args([first]))
        assert [None] == [row["history"] for row in rows]

        store = _store(history_dsn)
        await store.open()  # applies 0002
        try:
            # The same content under another claim id: the earlier claim, as stored by the
            # previous release, is its history, line by line.
            again = _stored("CLM-UP-2")
            [recorded] = await store.record([again])
            [prior] = recorded.history.claims
            assert ("CLM-UP-1", first.content_key) == (prior.claim_id, prior.content_key)
            expected = tuple(
                PriorLine(code, tuple(modifiers), date.fromisoformat(day), units, pos, npi)
                for code, modifiers, day, units, pos, npi, _ in orjson.loads(first.lines)
            )
            assert expected == prior.lines

            # An instance still on the previous release records and reads the same history.
            third = _stored("CLM-UP-3", charge="99.00")
            [row] = await connection.fetch(PREVIOUS_CALL, *_args([third]))
            earlier = [(c[0], c[2]) for c in orjson.loads(row["history"])]
            assert [("CLM-UP-1", first.content_key), ("CLM-UP-2", again.content_key)] == earlier

            # And this release sees what the previous one recorded.
            [recorded] = await store.record([_stored("CLM-UP-4", charge="98.00")])
            assert ["CLM-UP-1", "CLM-UP-2", "CLM-UP-3"] == [
                c.claim_id for c in recorded.history.claims
            ]
        finally:
            await store.close()
    finally:
        await connection.close()


async def test_a_batch_is_one_statement_with_no_reset_after_it(history_dsn: str) -> None:
    store = _store(history_dsn)
    await store.open()
    watcher = await asyncpg.connect(history_dsn)
    try:
        await store.record([_stored("CLM-ONE-1"), _stored("CLM-ONE-2", charge="1.00")])
        # The last statement of each of the store's connections: the batch call, not the
        # pool's reset (RESET ALL, UNLISTEN *, ...) that would be a second round trip.
        last = await watcher.fetch(
            "SELECT query FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        queries = [row["query"] for row in last]
        assert any("claims_history.record_batch(" in q for q in queries), queries
        assert not any("RESET ALL" in q for q in queries), queries
    finally:
        await watcher.close()
        await store.close()
