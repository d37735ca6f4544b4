"""Composition root of the Kafka service: `create_app()` builds it, `run()` serves it.

Nothing happens at import. `create_app(settings, table, producer)` wires the FastStream app:
a KafkaBroker with one batch subscriber (`service.handlers`), the verdict producer (created at
start-up in the running loop, or the one handed in by a test), and start/stop hooks.
`run(settings)` is what `claims-validator serve` calls: it configures logging, serves until
SIGTERM/SIGINT, drains the batch in flight and returns the process exit code.

The app is an `AsgiFastStream`: besides consuming, it answers `/metrics`, `/health/live` and
`/health/ready` (`service.observability`), served by uvicorn in the same event loop from
before the broker starts until after it stopped (`settings.http`; off for the benchmark's
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
from collections.abc import Sequence
from typing import Any, Final

import structlog
from faststream import FastStream
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from service.asyncapi import TITLE, VERSION, declare_outputs
from service.handlers import ClaimsHandler, register_handlers
from service.health import Readiness
from service.logs import configure_logging, framework_logger
from service.metrics import ServiceMetrics, SubscriberLike
from service.observability import (
    HttpServer,
    TracingUnavailable,
    http_routes,
    telemetry_middlewares,
)
from service.publishing import BatchPublisher, Producer, build_producer
from service.routing import Topics
from service.ruletable.compiled import RuleTable
from service.settings import Settings, load_settings

__all__ = [
    "EXIT_OK",
    "EXIT_SHUTDOWN_TIMEOUT",
    "EXIT_STARTUP_FAILED",
    "ProducerSlot",
    "build_broker",
    "create_app",
    "rule_table",
    "run",
    "serve",
    "tune_gc",
]

EXIT_OK: Final = 0
EXIT_STARTUP_FAILED: Final = 1
"""The broker could not be reached (or refused us) at start-up."""
EXIT_SHUTDOWN_TIMEOUT: Final = 4
"""Shutdown overran its bound; nothing is lost (the batch in flight was not committed)."""

GRACEFUL_SHARE: Final = 0.6
"""Share of the shutdown bound the batch in flight may use to finish and commit."""

log = structlog.get_logger("claims_validator.app")


class ProducerSlot:
    """Owns the verdict producer: built and started before the consumer, stopped after it."""

    def __init__(self, settings: Settings, given: Producer | None) -> None:
        self._settings = settings
        self._given = given
        self._producer: Producer | None = None

    def __call__(self) -> Producer:
        if self._producer is None:
            raise RuntimeError("the verdict producer is not started")
        return self._producer

    async def start(self) -> None:
        producer = self._given if self._given is not None else build_producer(self._settings)
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


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
    producer: Producer | None = None,
) -> AsgiFastStream:
    """The FastStream app; `table` defaults to the shipped rule table, `producer` to an
    idempotent aiokafka producer built from `settings` at start-up.

    Raises `TracingUnavailable` when tracing is on and OpenTelemetry is not installed."""
    if settings is None:
        settings = load_settings()
    if table is None:
        table = rule_table(settings)

    metrics = ServiceMetrics(table)
    tracing, close_tracing = telemetry_middlewares(settings.tracing)
    broker = build_broker(settings, middlewares=[*tracing, metrics.middleware()])
    slot = ProducerSlot(settings, producer)
    publisher = BatchPublisher(
        slot,
        initial_backoff_s=settings.publish.retry_initial_s,
        max_backoff_s=settings.publish.retry_max_s,
    )
    topics = Topics(
        accepted=settings.topics.accepted,
        flagged=settings.topics.flagged,
        dead_letter=settings.topics.dead_letter,
        group_id=settings.consumer.group_id,
    )
    subscriber = register_handlers(
        broker, settings, ClaimsHandler(table, topics, publisher, observer=metrics)
    )
    metrics.consumer_lag.watch(subscriber)
    declare_outputs(broker, settings.topics)  # for the AsyncAPI document only
    readiness = Readiness(
        ping=broker.ping,
        assigned_partitions=lambda: _assigned_partitions(subscriber),
        rule_table_version=lambda: table.version,
        ping_timeout_s=settings.http.ping_timeout_s,
        ping_cache_s=settings.http.ping_cache_s,
    )

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

    return AsgiFastStream(
        broker,
        asgi_routes=http_routes(metrics, readiness),
        logger=framework_logger(),
        on_startup=[slot.start],
        after_startup=[started],
        on_shutdown=[readiness.stopping],
        after_shutdown=[slot.stop, *([close_tracing] if close_tracing else [])],
        specification=AsyncAPI(title=TITLE, version=VERSION),
    )


def _assigned_partitions(subscriber: SubscriberLike) -> int | None:
    consumer = subscriber.consumer
    return None if consumer is None else len(consumer.assignment())


def run(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT; return the process exit code (0 after a clean drain)."""
    configure_logging(settings)
    try:
        app = create_app(settings)
    except TracingUnavailable as exc:
        log.error("startup_failed", error=type(exc).__name__, error_detail=str(exc))
        return EXIT_STARTUP_FAILED
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
    """Start `app`, wait for SIGTERM/SIGINT, stop it within the shutdown bound; the exit code.

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
                error_detail=str(exc)[:300],
                http_host=settings.http.host,
                http_port=settings.http.port,
            )
            await http.stop()
            return EXIT_STARTUP_FAILED
    try:
        return await _serve_app(app, settings, stop)
    finally:
        if http is not None:
            await http.stop()


async def _serve_app(
    app: FastStream | AsgiFastStream, settings: Settings, stop: asyncio.Event
) -> int:
    try:
        await app.start()
    except Exception as exc:  # any start-up failure ends the process with a reason
        log.error("startup_failed", error=type(exc).__name__, error_detail=str(exc)[:300])
        await _stop_quietly(app, settings.shutdown_timeout_s)
        return EXIT_STARTUP_FAILED

    await stop.wait()
    log.info("shutdown_requested", timeout_s=settings.shutdown_timeout_s)
    try:
        async with asyncio.timeout(settings.shutdown_timeout_s):
            await app.stop()
    except TimeoutError:
        log.error("shutdown_timed_out", timeout_s=settings.shutdown_timeout_s)
        return EXIT_SHUTDOWN_TIMEOUT
    log.info("service_stopped")
    return EXIT_OK


async def _stop_quietly(app: FastStream | AsgiFastStream, timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await app.stop()
    except Exception as exc:  # already failing; keep the first error visible
        log.warning("stop_after_failed_start", error=type(exc).__name__)
