"""Readiness of the service: the broker answers, partitions are assigned, the rules are loaded.

`/health/ready` is probed every few seconds by Kubernetes (and by the Dockerfile's
HEALTHCHECK); `Readiness.report()` answers it. The broker check is a real request
(`KafkaBroker.ping`, a DescribeCluster call), so its answer is reused for `ping_cache_s` and
concurrent probes share one ping. Everything else is read from memory.

Liveness needs none of this: `/health/live` answers 200 as long as the event loop runs, because
the HTTP server is served by that same loop (see `service.observability`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import structlog

__all__ = [
    "BASE_CHECKS",
    "CHECKS",
    "OK",
    "SERVICE_CHECKS",
    "LoopWatchdog",
    "Readiness",
    "ReadinessReport",
    "StallMonitor",
]

BASE_CHECKS: Final = ("serving", "broker", "partitions", "rule_table")
"""The checks every `Readiness` report has, in this order."""
SERVICE_CHECKS: Final = ("consumer", "publishing", "progress")
"""The service's own checks (`StallMonitor`), after the base ones."""
CHECKS: Final = (*BASE_CHECKS, *SERVICE_CHECKS)
"""The checks of the service's /health/ready, in this order."""

log = structlog.get_logger("claims_validator.health")

OK: Final = "ok"
PING_GRACE_S: Final = 0.5
"""A ping is cut off this long after its own timeout, should it not honour it."""


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    """The outcome of each check: "ok" or why not."""

    checks: Mapping[str, str]

    @property
    def ready(self) -> bool:
        return all(v == OK for v in self.checks.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, v in self.checks.items() if v != OK]

    def body(self) -> dict[str, Any]:
        """The JSON body of /health/ready."""
        return {
            "status": "ready" if self.ready else "not ready",
            "failed": self.failed,
            "checks": dict(self.checks),
        }


class Readiness:
    """Decides readiness from three plain callables, so tests hand in fakes.

    `ping(timeout_s)` asks the broker; `assigned_partitions()` is the number of partitions the
    consumer holds, or None when no consumer runs; `rule_table_version()` is the version of the
    loaded table, or None.
    """

    def __init__(
        self,
        *,
        ping: Callable[[float], Awaitable[bool]],
        assigned_partitions: Callable[[], int | None],
        rule_table_version: Callable[[], str | None],
        ping_timeout_s: float = 1.0,
        ping_cache_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        extra: Mapping[str, Callable[[], Awaitable[str]]] | None = None,
    ) -> None:
        self._extra = dict(extra or {})
        self._ping = ping
        self._assigned = assigned_partitions
        self._version = rule_table_version
        self._timeout = ping_timeout_s
        self._cache_s = ping_cache_s
        self._clock = clock
        self._answer: tuple[float, bool] | None = None
        self._lock = asyncio.Lock()
        self._stopping = False

    def stopping(self) -> None:
        """Shutdown has begun: report not ready from now on (an `on_shutdown` hook)."""
        self._stopping = True

    async def report(self) -> ReadinessReport:
        checks: dict[str, str] = {}
        checks["serving"] = "shutting down" if self._stopping else OK
        checks["broker"] = (
            OK if await self._broker_answers() else f"no answer within {self._timeout:g} s"
        )
        assigned = self._assigned()
        if assigned is None:
            checks["partitions"] = "consumer not running"
        elif assigned == 0:
            checks["partitions"] = "no partition assigned"
        else:
            checks["partitions"] = OK
        checks["rule_table"] = OK if self._version() else "not loaded"
        for name, check in self._extra.items():
            try:
                checks[name] = await check()
            except Exception as exc:  # a failing check is a failed check, never a 500
                checks[name] = f"check failed: {type(exc).__name__}"
        return ReadinessReport(checks)

    async def _broker_answers(self) -> bool:
        async with self._lock:  # concurrent probes wait for one ping, then share it
            cached = self._answer
            now = self._clock()
            if cached is not None and now - cached[0] < self._cache_s:
                return cached[1]
            try:
                async with asyncio.timeout(self._timeout + PING_GRACE_S):
                    answered = await self._ping(self._timeout)
            except Exception:  # an error is "no answer", never a failed probe handler
                answered = False
            self._answer = (self._clock(), answered)
            return answered


class LoopWatchdog:
    """Measures how late the event loop wakes a task that sleeps `tick_s`: the time it was
    blocked (a CPU-bound record, a synchronous call). Liveness fails while a block longer
    than `bound_s` happened within the last `memory_s`."""

    def __init__(
        self,
        bound_s: float,
        *,
        tick_s: float = 0.25,
        memory_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bound = bound_s
        self._tick = tick_s
        self._memory = memory_s
        self._clock = clock
        self._last_block: tuple[float, float] | None = None
        """(when it ended, how long it was) of the last block over the bound."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def observe(self, late_s: float) -> None:
        if late_s > self._bound:
            self._last_block = (self._clock(), late_s)
            log.warning("event_loop_blocked", blocked_s=round(late_s, 3), bound_s=self._bound)

    def problem(self) -> str | None:
        """Why the process is not live, or None."""
        if self._last_block is None:
            return None
        ended, length = self._last_block
        if self._clock() - ended > self._memory:
            return None
        return f"the event loop was blocked for {length:.1f} s (bound {self._bound:g} s)"

    async def _watch(self) -> None:
        while True:
            before = self._clock()
            await asyncio.sleep(self._tick)
            self.observe(self._clock() - before - self._tick)


class StallMonitor:
    """The service's own readiness checks, from plain callables (tests hand in fakes).

    * consumer: a member of its group, no partition stopped at an unreadable record;
    * publishing: not failing for longer than `publish_failing_s`;
    * progress: no lag left waiting while no batch completed for `stalled_s`.
    """

    def __init__(
        self,
        *,
        in_group: Callable[[], bool],
        stopped: Callable[[], Sequence[str]],
        failing_since: Callable[[], float | None],
        last_progress: Callable[[], float | None],
        lag: Callable[[], int],
        refresh_lag: Callable[[], Awaitable[None]],
        publish_failing_s: float,
        stalled_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._in_group = in_group
        self._stopped = stopped
        self._failing_since = failing_since
        self._last_progress = last_progress
        self._lag = lag
        self._refresh_lag = refresh_lag
        self._publish_failing_s = publish_failing_s
        self._stalled_s = stalled_s
        self._clock = clock
        self._since = clock()

    def consumer(self) -> str:
        stopped = self._stopped()
        if stopped:
            return "stopped at an unreadable record: " + "; ".join(stopped)
        return OK if self._in_group() else "not a member of the consumer group"

    def publishing(self) -> str:
        since = self._failing_since()
        if since is not None and self._clock() - since >= self._publish_failing_s:
            return f"publishing has been failing for {self._clock() - since:.0f} s"
        return OK

    def progress(self) -> str:
        lag = self._lag()
        last = self._last_progress()
        idle = self._clock() - (last if last is not None else self._since)
        if lag > 0 and idle >= self._stalled_s:
            return f"{lag} records waiting and no batch completed for {idle:.0f} s"
        return OK

    def stalled(self) -> bool:
        """For the `stalled` gauge: publishing failing, a partition stopped, no progress."""
        return (
            bool(self._stopped()) or self.publishing() != OK or self.progress() != OK
        )

    def checks(self) -> dict[str, Callable[[], Awaitable[str]]]:
        async def consumer() -> str:
            return self.consumer()

        async def publishing() -> str:
            return self.publishing()

        async def progress() -> str:
            await self._refresh_lag()
            return self.progress()

        return {"consumer": consumer, "publishing": publishing, "progress": progress}
