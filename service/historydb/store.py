"""Records claims in the history database and returns each one's history, a batch at a time.

`StoredClaim.of(event)` is what a readable claim leaves in the database: the keyed hash of its
payer and member (HMAC-SHA256 under `history.hmac_key`), its claim and event ids, its content
key and the line facts the rules compare. Nothing else of the claim is sent: no member ID, no
birth date. `HistoryStore.record(batch)` is one call of `claims_history.record_batch`, so one
round trip per consumed batch whatever its size.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg
import orjson

from service.engine.families.history import content_key, rendering_npi
from service.history_settings import HistorySettings
from service.historydb.schema import migrate
from service.models.events import ClaimSubmitted
from service.models.history import EMPTY_HISTORY, History, PriorClaim, PriorLine

__all__ = ["HistoryStore", "MemberKeys", "Recorded", "StoredClaim"]


class MemberKeys:
    """The member key: HMAC-SHA256(secret, payer id NUL member id)."""

    def __init__(self, secret: str) -> None:
        self._mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def __call__(self, payer_id: str, member_id: str) -> bytes:
        mac = self._mac.copy()
        mac.update(f"{payer_id}\0{member_id}".encode())
        return mac.digest()


@dataclass(frozen=True, slots=True)
class StoredClaim:
    event_id: str
    member_key: bytes
    claim_id: str
    content_key: str
    first_date: date
    last_date: date
    lines: str
    """JSON array of [code, modifiers, date, units, place of service, rendering NPI, charge]."""

    @classmethod
    def of(cls, event: ClaimSubmitted, keys: MemberKeys) -> StoredClaim:
        claim = event.claim
        dates = [line.service_date for line in claim.service_lines]
        # orjson writes a date as its ISO text and a tuple as an array.
        lines = [
            (
                line.procedure_code,
                line.modifiers,
                line.service_date,
                line.units,
                line.place_of_service,
                rendering_npi(claim, line),
                str(line.charge_amount),
            )
            for line in claim.service_lines
        ]
        return cls(
            event_id=event.event_id,
            member_key=keys(claim.payer_id, claim.patient.member_id),
            claim_id=claim.claim_id,
            content_key=content_key(claim),
            first_date=min(dates),
            last_date=max(dates),
            lines=orjson.dumps(lines).decode(),
        )


@dataclass(frozen=True, slots=True)
class Recorded:
    sequence: int
    history: History


class HistoryStore:
    """A pool of connections to the history database."""

    def __init__(self, settings: HistorySettings, window_days: int) -> None:
        if settings.dsn is None:
            raise ValueError("history.dsn is not set")
        self._settings = settings
        self._dsn = settings.dsn.get_secret_value()
        self._window_days = window_days
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        """Connect and apply the shipped migrations; raises when the database is away."""
        settings = self._settings
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=1,
            max_size=settings.pool_size,
            timeout=settings.connect_timeout_s,
            command_timeout=settings.statement_timeout_s,
            ssl=settings.ssl(),
            # A connection that dropped with the server is found out on use, then replaced.
            max_inactive_connection_lifetime=60.0,
            reset=_keep_session,
        )
        try:
            async with self._pool.acquire() as connection:
                await migrate(connection)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _ready_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise ConnectionError("the history database is not connected")
        return self._pool

    async def record(self, batch: Sequence[StoredClaim]) -> list[Recorded]:
        """Store `batch` (in order) and return each claim's history: one round trip."""
        if not batch:
            return []
        rows = await self._ready_pool().fetch(
            "SELECT idx, seq, history::text FROM claims_history.record_batch("
            "$1, $2, $3, $4, $5, $6, $7::text[]::json[], $8)",
            [c.event_id for c in batch],
            [c.member_key for c in batch],
            [c.claim_id for c in batch],
            [c.content_key for c in batch],
            [c.first_date for c in batch],
            [c.last_date for c in batch],
            [c.lines for c in batch],
            self._window_days,
        )
        out: list[Recorded | None] = [None] * len(batch)
        for row in rows:
            i = row["idx"] - 1
            out[i] = Recorded(row["seq"], _history(row["history"], batch[i].content_key))
        if any(r is None for r in out):
            raise RuntimeError("the history database answered for fewer claims than sent")
        return [r for r in out if r is not None]

    async def ping(self) -> None:
        await self._ready_pool().fetchval("SELECT 1")

    async def purge(self, margin_days: int) -> int:
        """Delete rows older than the longest window plus `margin_days`; how many."""
        keep = self._window_days + margin_days
        return int(await self._ready_pool().fetchval("SELECT claims_history.purge($1)", keep))


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset of a returned connection: nothing beyond what asyncpg always does
    (roll back an open transaction). Its default reset query (RESET ALL, UNLISTEN *, CLOSE ALL,
    advisory unlock) would be a second round trip per batch, and this store leaves no session
    state: its locks are transaction-scoped, it sets nothing, listens to nothing, keeps no cursor
    (the migration's session lock is released before the connection is returned)."""


def _history(text: str | None, own_key: str) -> History:
    """The history a row of `record_batch` holds for the claim stored under `own_key`."""
    if text is None:  # no earlier claim
        return EMPTY_HISTORY
    claims: list[PriorClaim] = []
    days: dict[str, date] = {}  # a member's lines share few dates: parse each once
    for claim_id, seq, key, raw_lines in orjson.loads(text):
        lines: list[PriorLine] = []
        for code, modifiers, day, units, pos, npi, _charge in raw_lines:
            when = days.get(day)
            if when is None:
                when = days[day] = date.fromisoformat(day)
            lines.append(PriorLine(code, tuple(modifiers), when, units, pos, npi))
        claims.append(PriorClaim(claim_id, seq, key, tuple(lines)))
    return History(tuple(claims), own_key)
