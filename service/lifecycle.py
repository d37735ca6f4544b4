"""What the running service knows about itself: whether a batch is in flight, whether it must
stop and with which exit code, and whether the batch in flight had to be abandoned.

The handler writes it; `service.app.serve` waits on it beside SIGTERM and turns it into the
process exit code; readiness reads it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from service.exitcodes import ExitCode

__all__ = ["Lifecycle"]

log = structlog.get_logger("claims_validator.lifecycle")


class Lifecycle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.stop_requested = asyncio.Event()
        self.exit_code: ExitCode | None = None
        """Set when the service decided to stop by itself (the first reason wins)."""
        self.reason: str | None = None
        self.batch_in_flight = False
        self.abandoned = False
        """A batch was cancelled by the shutdown bound before it was published and committed."""
        self.last_batch_done: float | None = None
        """Monotonic time the last batch was published (None: none yet)."""

    def fail(self, code: ExitCode, reason: str) -> None:
        """Stop the service with `code`; the batch in flight is not committed."""
        if self.exit_code is None:
            self.exit_code = code
            self.reason = reason
            log.error("service_stopping", exit_code=int(code), exit_reason=code.name, detail=reason)
        self.stop_requested.set()

    def batch_started(self) -> None:
        self.batch_in_flight = True

    def batch_done(self) -> None:
        self.batch_in_flight = False
        self.last_batch_done = self._clock()

    def batch_cancelled(self) -> None:
        self.batch_in_flight = False
        self.abandoned = True
