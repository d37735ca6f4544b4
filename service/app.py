"""Composition root of the Kafka service: `create_app()` builds it, `run()` serves it.

Nothing happens at import. `create_app(settings, table, producer)` wires the FastStream app:
a KafkaBroker with one batch subscriber (`service.handlers`), the verdict producer (created at
start-up in the running loop, or the one handed in by a test), and start/stop hooks.
`run(settings)` is what `claims-validator serve` calls: it configures logging, serves until
SIGTERM/SIGINT, drains the batch in flight and returns the process exit code.

The app is an `AsgiFastStream`: besides consuming, it answers `/metrics`, `/health/live` and
`/health/ready` (`service.observability`) and the HTTP API and what-if page (`service.web`,
`settings.api`), served by uvicorn in the same event loop from before the broker starts
until after it stopped (`settings.http`; off for the benchmark's
pass-through consumer, a plain `FastStream`). Metrics: `service.metrics`; tracing (off by
default): FastStream's OpenTelemetry middleware.

Shutdown is bounded by `settings.shutdown_timeout_s`: the batch in flight gets up to 60% of
it to publish and commit (FastStream's graceful timeout), the rest closes the clients. If the
bound is hit, the uncommitted batch is simply consumed again after the restart.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
from collections.abc import Callable, Sequence
from typing import Any, Final, cast

import structlog
from aiokafka.errors import KafkaConnectionError  # type: ignore[import-untyped]
from faststream import FastStream
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from service.asyncapi import TITLE, VERSION, declare_outputs
from service.consuming import Membership
from service.exitcodes import ExitCode
from service.handlers import ClaimsHandler, InternalErrorBrake, Judge, register_handlers
from service.health import LoopWatchdog, Readiness, StallMonitor
from service.lifecycle import Lifecycle
from service.logs import configure_logging, framework_logger
from service.metrics import ServiceMetrics, SubscriberLike
from service.observability import (
    HttpServer,
    TracingUnavailable,
    http_routes,
    telemetry_middlewares,
)
from service.publishing import BatchPublisher, Producer, build_producer
from service.routing import Topics, route
from service.ruletable.compiled import RuleTable
from service.settings import Settings, load_settings
from service.web.api import api_paths, create_api

__all__ = [
    "ProducerSlot",
    "build_broker",
    "create_app",
    "rule_table",
    "run",
    "serve",
    "tune_gc",
]

GRACEFUL_SHARE: Final = 0.6
"""Share of the shutdown bound the batch in flight may use to finish and commit."""

log = structlog.get_logger("claims_validator.app")


class ProducerSlot:
    """Owns the verdict producer: built and started before the consumer, stopped after it."""

    def __init__(
        self, settings: Settings, given: Producer | Callable[[], Producer] | None
    ) -> None:
        """`given`: a producer (tests: started again on a rebuild) or a factory of them;
        None: idempotent aiokafka producers built from `settings`."""
        if given is None:
            self._factory: Callable[[], Producer] = lambda: build_producer(settings)
        elif callable(given) and not hasattr(given, "send"):
            self._factory = given
        else:
            producer = cast(Producer, given)
            self._factory = lambda: producer
        self._producer: Producer | None = None

    def __call__(self) -> Producer:
        if self._producer is None:
            raise RuntimeError("the verdict producer is not started")
        return self._producer

    async def start(self) -> None:
        producer = self._factory()
        try:
            await producer.start()
        except BaseException:
            await _close_quietly(producer)  # a failed start still holds sockets and tasks
            raise
        self._producer = producer

    async def rebuild(self) -> None:
        """Replace a producer whose state broke: the old one is closed (its pending sends
        fail, and the publisher resends them), a new one started."""
        old, self._producer = self._producer, None
        if old is not None:
            await _close_quietly(old)
        await self.start()

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


PRODUCER_CLOSE_TIMEOUT_S: Final = 5.0


async def _close_quietly(producer: Producer) -> None:
    try:
        async with asyncio.timeout(PRODUCER_CLOSE_TIMEOUT_S):
            await producer.stop()
    except Exception as exc:  # closing a broken producer: nothing more to do
        log.warning("producer_close_failed", error=type(exc).__name__)


def build_broker(settings: Settings, middlewares: Sequence[Any] = ()) -> KafkaBroker:
    """The FastStream broker (consumer side) with the service's connection and logging;
    `middlewares` are broker-level (FastStream 0.7 has no subscriber-level ones)."""
    return KafkaBroker(
        settings.kafka.servers,
        client_id=settings.kafka.client_id,
        request_timeout_ms=settings.kafka.request_timeout_ms,
        security=settings.kafka.security(),
        graceful_timeout=settings.shutdown_timeout_s * GRACEFUL_SHARE,
        logger=framework_logger(),
        # FastStream's per-batch "Received"/"Processed" lines: our verdict lines say more.
        log_level=logging.DEBUG,
        # Handlers take raw records; see service.handlers._raw_records.
        apply_types=False,
        middlewares=middlewares,
    )


def rule_table(settings: Settings) -> RuleTable:
    """The table `settings` names (CLAIMS_RULE_TABLE_DIR), else the one shipped in the package.

    A broken table raises `RuleTableError` naming the file, row and field: start-up stops there.
    """
    from service.tables import default_table, load_table

    return load_table(settings.rule_table_dir) if settings.rule_table_dir else default_table()


def create_app(
    settings: Settings | None = None,
    table: RuleTable | None = None,
    producer: Producer | Callable[[], Producer] | None = None,
    lifecycle: Lifecycle | None = None,
    judge: Judge = route,
) -> AsgiFastStream:
    """The FastStream app; `table` defaults to the shipped rule table, `producer` to an
    idempotent aiokafka producer built from `settings` at start-up (or a factory of them).

    Raises `TracingUnavailable` when tracing is on and OpenTelemetry is not installed."""
    if settings is None:
        settings = load_settings()
    if table is None:
        table = rule_table(settings)
    lifecycle = lifecycle if lifecycle is not None else Lifecycle()

    metrics = ServiceMetrics(table)
    tracing, close_tracing = telemetry_middlewares(settings.tracing)
    broker = build_broker(settings, middlewares=[*tracing, metrics.middleware()])
    slot = ProducerSlot(settings, producer)
    publish = settings.publish
    publisher = BatchPublisher(
        slot,
        initial_backoff_s=publish.retry_initial_s,
        max_backoff_s=publish.retry_max_s,
        deadline_s=publish.batch_deadline_s,
        give_up_after_s=publish.give_up_after_s,
        max_rebuilds=publish.max_producer_rebuilds,
        rebuild=slot.rebuild,
        observer=metrics,
    )
    topics = Topics(
        accepted=settings.topics.accepted,
        flagged=settings.topics.flagged,
        dead_letter=settings.topics.dead_letter,
        group_id=settings.consumer.group_id,
    )
    membership = Membership()
    handler = ClaimsHandler(
        table,
        topics,
        publisher,
        observer=metrics,
        lifecycle=lifecycle,
        brake=InternalErrorBrake(settings.brake),
        judge=judge,
        limits=settings.limits.limits(),
    )
    subscriber = register_handlers(broker, settings, handler, membership)
    metrics.consumer_lag.watch(subscriber)
    declare_outputs(broker, settings.topics)  # for the AsyncAPI document only
    stalls = StallMonitor(
        in_group=lambda: membership.in_group and bool(membership.assigned),
        stopped=lambda: [
            f"{s.topic}-{s.partition} at offset {s.offset} ({s.error})"
            for s in membership.stopped.values()
        ],
        failing_since=lambda: publisher.health.failing_since,
        last_progress=lambda: lifecycle.last_batch_done,
        lag=lambda: metrics.consumer_lag.total,
        refresh_lag=metrics.consumer_lag.refresh,
        publish_failing_s=settings.health.publish_failing_s,
        stalled_s=settings.health.stalled_s,
    )
    metrics.stalled.set_function(lambda: float(stalls.stalled()))
    metrics.partitions_stopped.set_function(lambda: float(len(membership.stopped)))
    metrics.in_group.set_function(
        lambda: float(membership.in_group and bool(membership.assigned))
    )
    readiness = Readiness(
        ping=broker.ping,
        assigned_partitions=lambda: _assigned_partitions(subscriber),
        rule_table_version=lambda: table.version,
        ping_timeout_s=settings.http.ping_timeout_s,
        ping_cache_s=settings.http.ping_cache_s,
        extra=stalls.checks(),
    )
    watchdog = LoopWatchdog(settings.health.loop_blocked_s)

    def started() -> None:
        log.info(
            "service_started",
            rule_table_version=table.version,
            rule_table_digest=table.digest,
            topics=settings.topics.model_dump(),
            group_id=settings.consumer.group_id,
            bootstrap_servers=settings.kafka.servers,
            batch_size=settings.consumer.batch_size,
        )

    async def stop_watchdog() -> None:
        await watchdog.stop()

    routes = http_routes(metrics, readiness, watchdog.problem)
    if settings.api.enabled:
        # FastStream routes by exact path, and every path of the API and page is fixed.
        api = create_api(table, settings, metrics)
        routes += [(path, api) for path in api_paths(api)]
    app = AsgiFastStream(
        broker,
        asgi_routes=routes,
        logger=framework_logger(),
        on_startup=[watchdog.start, slot.start],
        after_startup=[started],
        on_shutdown=[readiness.stopping],
        after_shutdown=[
            slot.stop,
            stop_watchdog,
            membership.left,
            *([close_tracing] if close_tracing else []),
        ],
        specification=AsyncAPI(title=TITLE, version=VERSION),
    )
    app.context.set_global(LIFECYCLE_KEY, lifecycle)
    return app


LIFECYCLE_KEY: Final = "claims_validator_lifecycle"
"""Where `serve()` finds the app's `Lifecycle` (FastStream's context of the app)."""


def _assigned_partitions(subscriber: SubscriberLike) -> int | None:
    consumer = subscriber.consumer
    return None if consumer is None else len(consumer.assignment())


def run(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT, or until the service stops itself; the exit code."""
    configure_logging(settings)
    try:
        app = create_app(settings)
    except TracingUnavailable as exc:
        log.error("startup_failed", error=type(exc).__name__, error_detail=str(exc))
        return ExitCode.CONFIG
    tune_gc()
    return asyncio.run(serve(app, settings))


GC_GEN0_THRESHOLD: Final = 20_000
"""Allocations between young-generation collections (CPython's default is 700).

Judging a claim allocates a few hundred short-lived objects that reference counting frees;
collecting every 700 allocations cost about a tenth of the per-claim CPU for nothing."""


def tune_gc() -> None:
    """Freeze start-up objects out of the collector and collect the young generation less often."""
    # Start-up objects (rule table, modules) live for the whole process: keep them out of
    # every later collection.
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


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
