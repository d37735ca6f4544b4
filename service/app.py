"""Composition root of the Kafka service: `create_app()` builds it (`service.serving` runs it).

Nothing happens at import. `create_app(settings, table, producer)` wires the FastStream app:
a KafkaBroker with one batch subscriber (`service.handlers`), the verdict producer (created at
start-up in the running loop, or the one handed in by a test), and start/stop hooks.

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

import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

import structlog
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from service.asyncapi import TITLE, VERSION, declare_outputs
from service.consuming import Membership
from service.engine import HISTORY_RULE_IDS
from service.handlers import ClaimsHandler, InternalErrorBrake, Judge, register_handlers
from service.health import LoopWatchdog, Readiness, StallMonitor
from service.historydb.gate import HistoryGate
from service.historydb.store import HistoryStore
from service.lifecycle import Lifecycle
from service.logs import framework_logger
from service.metrics import ServiceMetrics, SubscriberLike
from service.observability import (
    http_routes,
    telemetry_middlewares,
)
from service.producers import Producer, ProducerSlot
from service.publishing import BatchPublisher
from service.routing import Topics, route
from service.ruletable.compiled import RuleTable, longest_window_days
from service.settings import Settings, load_settings
from service.web.api import api_paths, create_api

__all__ = ["LIFECYCLE_KEY", "build_broker", "create_app", "rule_table"]

GRACEFUL_SHARE: Final = 0.6
"""Share of the shutdown bound the batch in flight may use to finish and commit."""

log = structlog.get_logger("claims_validator.app")


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
    history: HistoryGate | None = None
    if settings.history.enabled:
        store = HistoryStore(settings.history, longest_window_days(table.frequency))
        history = HistoryGate(store, settings.history, lifecycle, registry=metrics.registry)
    handler = ClaimsHandler(
        table,
        topics,
        publisher,
        observer=metrics,
        lifecycle=lifecycle,
        brake=InternalErrorBrake(settings.brake),
        judge=judge,
        limits=settings.limits.limits(),
        history=history,
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
        extra={**stalls.checks(), **({"history": history.check} if history else {})},
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
            history=settings.history.enabled,
        )
        if history is None:
            log.info(
                "history_off",
                skipped_rules=sorted(HISTORY_RULE_IDS),
                detail="CLAIMS_HISTORY__ENABLED is false: the cross-claim rules are not judged",
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
        on_startup=[watchdog.start, slot.start, *([history.start] if history else [])],
        after_startup=[started],
        on_shutdown=[readiness.stopping],
        after_shutdown=[
            slot.stop,
            stop_watchdog,
            membership.left,
            *([history.stop] if history else []),
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
