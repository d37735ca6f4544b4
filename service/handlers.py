"""The Kafka shell: one batch of `claim.submitted` records in, verdicts and dead letters out.

`register_handlers()` declares the batch subscriber. Its ack policy is NACK_ON_ERROR, so the
offsets of a batch are committed only after `ClaimsHandler` returned, i.e. after the broker
acknowledged every record it produced; if the handler raises, FastStream seeks the consumer
back to the start of the batch and it is handled again. It never auto-commits.

The handler body is deliberately thin: `service.routing.route` decides, `BatchPublisher`
publishes, and the log lines are written only once the broker has acknowledged them. A
`BatchObserver` (the service's metrics) then sees the whole batch at once, never each record.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, Topic

from service.logs import flush_logs, log_verdicts
from service.publishing import BatchPublisher
from service.routing import InputRecord, OutRecord, Routed, Topics, route
from service.ruletable.compiled import RuleTable
from service.settings import Settings

if TYPE_CHECKING:
    from faststream.kafka.subscriber.usecase import BatchSubscriber

__all__ = ["BatchHandler", "BatchObserver", "ClaimsHandler", "register_handlers"]

log = structlog.get_logger("claims_validator.handler")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class BatchObserver(Protocol):
    """Told about each batch once it is published (`service.metrics.ServiceMetrics`)."""

    async def observe_batch(
        self, routed: Sequence[Routed], seconds: float, attempts: int
    ) -> None: ...


class ClaimsHandler:
    """Judges one batch, publishes the results, then logs one line per record."""

    def __init__(
        self,
        table: RuleTable,
        topics: Topics,
        publisher: BatchPublisher,
        clock: Callable[[], datetime] = _utc_now,
        observer: BatchObserver | None = None,
    ) -> None:
        self._table = table
        self._topics = topics
        self._publisher = publisher
        self._clock = clock
        self._observer = observer

    async def __call__(self, records: Sequence[InputRecord]) -> None:
        started = time.perf_counter()
        now = self._clock()
        routed: list[Routed] = []

        def outgoing() -> Iterator[OutRecord]:
            # Lazy: the publisher sends each record as soon as it is judged.
            for record in records:
                result = route(record, self._table, self._topics, now=now)
                routed.append(result)
                yield result.out

        attempts = await self._publisher.publish(outgoing())
        seconds = time.perf_counter() - started
        # One structlog pass over the batch's verdict lines, written in one call.
        log_verdicts(r.fields for r in routed if r.event == "verdict")
        for r in routed:
            if r.event != "verdict":
                log.warning(r.event, **r.fields)
        flush_logs()
        if self._observer is not None:
            try:
                await self._observer.observe_batch(routed, seconds, attempts)
            except Exception as exc:  # the batch is published: never redeliver it for this
                log.warning("observe_batch_failed", error=type(exc).__name__)


async def _raw_records(msg: Any) -> Any:
    """Decoder of the subscriber: the aiokafka records themselves.

    `service.decode` parses each value once; FastStream's default decoder would JSON-decode
    every record first, which is wasted work (and fails on the unreadable ones we dead-letter).
    """
    return msg.raw_message


BatchHandler = Callable[[Sequence[InputRecord]], Awaitable[None]]
"""Takes one consumed batch; returns once everything it produced is acknowledged."""


def register_handlers(
    broker: KafkaBroker, settings: Settings, handler: BatchHandler
) -> BatchSubscriber:
    """Subscribe `handler` to the input topic as a batch consumer in the service's group;
    the subscriber (its `consumer` is the aiokafka consumer while it runs).

    `handler` is a `ClaimsHandler`; the Kafka benchmark passes a pass-through one to measure
    the same consumer and producer without the rules."""
    consumer = settings.consumer
    subscriber = broker.subscriber(
        # declare=False: the service creates no topics; the deployment declares them.
        Topic(settings.topics.submitted, declare=False),
        batch=True,
        max_records=consumer.batch_size,
        batch_timeout_ms=consumer.batch_timeout_ms,
        group_id=consumer.group_id,
        auto_offset_reset=consumer.auto_offset_reset,
        max_poll_interval_ms=consumer.max_poll_interval_ms,
        session_timeout_ms=consumer.session_timeout_ms,
        heartbeat_interval_ms=consumer.heartbeat_interval_ms,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=_raw_records,
        title="claims.submitted",
        description="Judges claim.submitted events; publishes claim.accepted / claim.flagged.",
    )

    @subscriber
    async def judge_claims(records: Any) -> None:
        # `records` is the tuple of aiokafka ConsumerRecords `_raw_records` hands over; typed
        # Any because FastDepends builds a pydantic model of the signature (not used for
        # validation with apply_types=False, but it cannot describe a ConsumerRecord).
        await handler(records)

    return subscriber
