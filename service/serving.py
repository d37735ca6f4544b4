"""Running the app: `run()` is what `claims-validator serve` calls; `serve()` starts the app, waits
for SIGTERM/SIGINT or for the service to stop itself, drains within the shutdown bound and
returns the process exit code (an `ExitCode`). A failed start is one `startup_failed` line that
names its cause, and what was opened is closed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
from typing import Final

import structlog
from aiokafka.errors import KafkaConnectionError  # type: ignore[import-untyped]
from faststream import FastStream
from faststream.asgi import AsgiFastStream

from service.app import LIFECYCLE_KEY, create_app
from service.exitcodes import ExitCode
from service.lifecycle import Lifecycle
from service.logs import configure_logging
from service.observability import (
    HttpServer,
    TracingUnavailable,
)
from service.settings import Settings

__all__ = ["run", "serve", "startup_cause", "tune_gc"]

log = structlog.get_logger("claims_validator.app")


def run(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT, or until the service stops itself; the exit code."""
    configure_logging(settings)
    try:
        app = create_app(settings)
    except TracingUnavailable as exc:
        log.error("startup_failed", error=type(exc).__name__, error_detail=str(exc))
        return ExitCode.CONFIG
    tune_gc(settings.consumer.batch_size)
    return asyncio.run(serve(app, settings))


GC_GEN0_THRESHOLD: Final = 20_000
"""Allocations between young-generation collections (CPython's default is 700), at least.

Judging a claim allocates a few hundred short-lived objects that reference counting frees;
collecting every 700 allocations cost about a tenth of the per-claim CPU for nothing."""

GC_OBJECTS_PER_RECORD: Final = 100
"""Tracked objects a consumed record keeps alive until its batch is done, at most: the consumer
record, and with the claim history on its decoded claim, stored facts and history (the history
path decodes the whole batch before its round trip). The young generation is sized to hold a
batch of them: collecting in the middle of a batch only promotes its live objects into the
older generations, which are then scanned again, for nothing (reference counting frees them
when the batch is done)."""

GC_GEN0_MAX: Final = 500_000
"""Cap of the young generation, so one collection of it stays short whatever the batch size."""


def tune_gc(batch_size: int = 0) -> None:
    """Freeze start-up objects out of the collector and collect the young generation less often:
    no more often than once per `batch_size` records' worth of objects."""
    # Start-up objects (rule table, modules) live for the whole process: keep them out of
    # every later collection.
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    young = min(max(GC_GEN0_THRESHOLD, GC_OBJECTS_PER_RECORD * batch_size), GC_GEN0_MAX)
    gc.set_threshold(young, gen1, gen2)


async def serve(app: FastStream | AsgiFastStream, settings: Settings) -> int:
    """Start `app`, wait for SIGTERM/SIGINT or for the service to stop itself, stop it within
    the shutdown bound; the exit code (an `ExitCode`).

    An `AsgiFastStream` app is also served over HTTP (unless `settings.http.enabled` is
    false) from before the broker starts until after it stopped, so the probes see the
    start-up and the drain."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    http: HttpServer | None = None
    if settings.http.enabled and isinstance(app, AsgiFastStream):
        http = HttpServer(app, settings.http)
        try:
            await http.start()
        except OSError as exc:  # e.g. the port is taken
            log.error(
                "startup_failed",
                error=type(exc).__name__,
                error_detail=f"cannot listen on {settings.http.host}:{settings.http.port}: "
                f"{exc.strerror or exc}",
                http_host=settings.http.host,
                http_port=settings.http.port,
            )
            await http.stop()
            return ExitCode.INPUT
    try:
        return await _serve_app(app, settings, stop)
    finally:
        if http is not None:
            await http.stop()


async def _serve_app(
    app: FastStream | AsgiFastStream, settings: Settings, stop: asyncio.Event
) -> int:
    lifecycle = _lifecycle_of(app)
    seen = _ConnectErrors()
    client_log = logging.getLogger("aiokafka")
    client_log.addHandler(seen)
    try:
        await app.start()
    except Exception as exc:  # any start-up failure ends the process with a reason
        cause = seen.errors[-1] if seen.errors else exc
        log.error(
            "startup_failed",
            error=type(cause).__name__,
            error_detail=startup_cause(cause, settings),
        )
        await _stop_quietly(app, settings.shutdown_timeout_s)
        return ExitCode.INPUT
    finally:
        client_log.removeHandler(seen)

    waits = [asyncio.ensure_future(stop.wait())]
    if lifecycle is not None:
        waits.append(asyncio.ensure_future(lifecycle.stop_requested.wait()))
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for waiting in waits:
        waiting.cancel()
    log.info("shutdown_requested", timeout_s=settings.shutdown_timeout_s)
    try:
        async with asyncio.timeout(settings.shutdown_timeout_s):
            await app.stop()
    except TimeoutError:
        log.error("shutdown_timed_out", timeout_s=settings.shutdown_timeout_s)
        return _exit_code(lifecycle, ExitCode.SHUTDOWN_ABANDONED)
    if lifecycle is not None and lifecycle.abandoned:
        log.error("shutdown_abandoned_batch", timeout_s=settings.shutdown_timeout_s)
        return _exit_code(lifecycle, ExitCode.SHUTDOWN_ABANDONED)
    log.info("service_stopped")
    return _exit_code(lifecycle, ExitCode.OK)


def _lifecycle_of(app: FastStream | AsgiFastStream) -> Lifecycle | None:
    found = app.context.get(LIFECYCLE_KEY)
    return found if isinstance(found, Lifecycle) else None


def _exit_code(lifecycle: Lifecycle | None, otherwise: ExitCode) -> int:
    """The service's own reason to stop wins over how the shutdown went."""
    if lifecycle is not None and lifecycle.exit_code is not None:
        return int(lifecycle.exit_code)
    return int(otherwise)


class _ConnectErrors(logging.Handler):
    """Keeps the errors aiokafka logs while connecting: its 'Unable to bootstrap' names no
    cause, the error it logged just before does (refused credentials, an untrusted
    certificate)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.errors.extend(a for a in args if isinstance(a, BaseException))


def startup_cause(exc: BaseException, settings: Settings) -> str:
    """One line naming why the service could not start (no secret: settings are not echoed,
    and client error texts name servers and mechanisms, never credentials)."""
    servers = ",".join(settings.kafka.servers)
    text = " ".join(str(exc).split())[:300]
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the broker's TLS certificate at {servers} is not trusted ({text}); check "
            "kafka.ssl_cafile"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {servers} failed ({text}); check kafka.ssl_* settings"
    name = type(exc).__name__
    if "Sasl" in name or "Authentication" in name:
        return (
            f"the broker at {servers} refused the SASL credentials: authentication failed "
            f"({text}); check kafka.sasl_mechanism, kafka.sasl_username and kafka.sasl_password"
        )
    if isinstance(exc, KafkaConnectionError | OSError | TimeoutError):
        return (
            f"no Kafka broker answered at {servers} ({text}); check kafka.bootstrap_servers, "
            "the network and kafka.security_protocol"
        )
    return f"{name}: {text}" if text else name


async def _stop_quietly(app: FastStream | AsgiFastStream, timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await app.stop()
    except Exception as exc:  # already failing; keep the first error visible
        log.warning("stop_after_failed_start", error=type(exc).__name__)
