"""What the Kafka shell asks of the claim history: each decoded claim's `History`, or a stop.

`HistoryGate.histories(decoded)` records the batch's readable claims in one round trip and
returns, per record, the history to judge it by (None for a record that is not a readable
claim). When the database fails, it waits (doubling backoff), then raises `HistoryUnavailable`:
the handler publishes nothing for the batch and commits nothing, so FastStream consumes it again.
No verdict is ever published without its history. Failing for longer than `give_up_after_s`
stops the service with exit code 7. Readiness (`check`) says the database is down while it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

from service.decode import Decoded, Readable
from service.exitcodes import ExitCode
from service.history_settings import HistorySettings
from service.historydb.store import HistoryStore, MemberKeys, StoredClaim
from service.lifecycle import Lifecycle
from service.models.history import History

__all__ = ["HistoryGate", "HistoryUnavailable"]

log = structlog.get_logger("claims_validator.history")

PING_TIMEOUT_S: Final = 1.0
PING_CACHE_S: Final = 2.0


class HistoryUnavailable(Exception):
    """The history database failed this batch: nothing is published for it."""


class HistoryGate:
    def __init__(
        self,
        store: HistoryStore,
        settings: HistorySettings,
        lifecycle: Lifecycle,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        assert settings.hmac_key is not None  # checked by HistorySettings when enabled
        self._store = store
        self._settings = settings
        self._lifecycle = lifecycle
        self._keys = MemberKeys(settings.hmac_key.get_secret_value())
        self._clock = clock
        self._sleep = sleep
        self._opened = False
        self._opening = asyncio.Lock()
        self._backoff = settings.retry_initial_s
        self.failing_since: float | None = None
        self._last_error = ""
        self._answer: tuple[float, str] | None = None
        self._purger: asyncio.Task[None] | None = None
        self.seconds = Histogram(
            "claims_validator_history_seconds",
            "Per batch, how long judging waited for the history database after the rules that"
            " need no history were done (connect included), in seconds.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=registry,
        )
        self.failures = Counter(
            "claims_validator_history_failures",
            "Batches the history database failed (each handed back uncommitted), by error.",
            ["error"],
            registry=registry,
        )

    async def histories(self, decoded: Sequence[Decoded | None]) -> list[History | None]:
        """Per record, the history of its readable claim (None: not a readable claim)."""
        where: list[int] = []
        batch: list[StoredClaim] = []
        for i, d in enumerate(decoded):
            if isinstance(d, Readable):
                where.append(i)
                batch.append(StoredClaim.of(d.event, self._keys))
        try:
            await self._open()
            recorded = await self._store.record(batch)
        except Exception as exc:  # any failure of the database: the batch waits for it
            await self._failed(exc)
            raise HistoryUnavailable(type(exc).__name__) from None
        if self.failing_since is not None:
            log.info("history_recovered", down_s=round(self._clock() - self.failing_since, 1))
        self.failing_since = None
        self._backoff = self._settings.retry_initial_s
        out: list[History | None] = [None] * len(decoded)
        for i, r in zip(where, recorded, strict=True):
            out[i] = r.history
        return out

    async def _open(self) -> None:
        """Connect and migrate once; the batches and the readiness probe may both ask."""
        async with self._opening:
            if not self._opened:
                await self._store.open()
                self._opened = True

    async def _failed(self, exc: Exception) -> None:
        error = type(exc).__name__
        self.failures.labels(error).inc()
        now = self._clock()
        if self.failing_since is None:
            self.failing_since = now
        self._last_error = error
        self._answer = None
        down = now - self.failing_since
        if down >= self._settings.give_up_after_s:
            self._lifecycle.fail(
                ExitCode.HISTORY_UNAVAILABLE,
                f"the history database has been failing for {down:.0f} s ({error})",
            )
            return
        wait = self._backoff
        self._backoff = min(self._backoff * 2, self._settings.retry_max_s)
        log.warning("history_unavailable", error=error, down_s=round(down, 1), retry_in_s=wait)
        await self._sleep(wait)

    async def check(self) -> str:
        """Readiness: "ok", or why the database is not usable."""
        if self.failing_since is not None:
            down = self._clock() - self.failing_since
            return f"history database failing for {down:.0f} s ({self._last_error})"
        cached = self._answer
        now = self._clock()
        if cached is not None and now - cached[0] < PING_CACHE_S:
            return cached[1]
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                await self._open()
                await self._store.ping()
            answer = "ok"
        except Exception as exc:  # a failed ping is a failed check
            answer = f"history database unavailable ({type(exc).__name__})"
        self._answer = (self._clock(), answer)
        return answer

    async def start(self) -> None:
        """A start-up hook: connect and migrate (a database away now is waited for by the
        batches, not fatal), then purge old rows now and every `purge_interval_s`."""
        try:
            await self._open()
            log.info("history_connected")
        except Exception as exc:  # the first batch retries with backoff
            log.warning("history_unavailable", error=type(exc).__name__, at="start-up")
        self._purger = asyncio.get_running_loop().create_task(self._purge_forever())

    async def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        await self._store.close()

    async def _purge_forever(self) -> None:
        while True:
            try:
                if self._opened:
                    deleted = await self._store.purge(self._settings.purge_margin_days)
                    log.info("history_purged", rows=deleted)
            except Exception as exc:  # the next round tries again
                log.warning("history_purge_failed", error=type(exc).__name__)
            await asyncio.sleep(self._settings.purge_interval_s)
