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
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["CHECKS", "Readiness", "ReadinessReport"]

CHECKS: Final = ("serving", "broker", "partitions", "rule_table")
"""The checks of a report, in this order."""

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
    ) -> None:
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
