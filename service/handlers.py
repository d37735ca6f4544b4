"""The Kafka shell: one batch of `claim.submitted` records in, verdicts and dead letters out.

`register_handlers()` declares the batch subscriber. Its ack policy is NACK_ON_ERROR, so the
offsets of a batch are committed only after `ClaimsHandler` returned, i.e. after the broker
acknowledged every record it produced; if the handler raises, FastStream seeks the consumer
back to the start of the batch and it is handled again. It never auto-commits. Its parser
keeps headers as bytes and its fetch stops a partition at a record the client cannot read
(`service.consuming`).

The handler is thin: `service.routing.route` turns each record into one `Outcome`,
`BatchPublisher` publishes them (replacing what the broker refuses by its fallback), and the
log lines and the metrics are derived from the outcomes as published. A batch that cannot be
published within its deadline is handed back to be consumed again; one that trips the
internal-error brake, or that publishing gave up on, stops the service with its exit code.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, Topic

from service.consuming import GuardedFetch, Membership, parse_batch
from service.decode import Decoded, Readable, decode
from service.engine import evaluate
from service.exitcodes import ExitCode
from service.historydb.gate import HistoryGate, HistoryUnavailable
from service.lifecycle import Lifecycle
from service.limits import DEFAULT_LIMITS, Limits
from service.logs import flush_logs, log_verdicts
from service.models.events import Finding
from service.models.history import History
from service.publishing import BatchPublisher, PublishFailed, PublishStalled
from service.routing import INTERNAL_ERROR, InputRecord, Outcome, Topics, route
from service.ruletable.compiled import RuleTable
from service.settings import BrakeSettings, Settings

if TYPE_CHECKING:
    from faststream.kafka.subscriber.usecase import BatchSubscriber

__all__ = [
    "BatchHandler",
    "BatchObserver",
    "ClaimsHandler",
    "InternalErrorBrake",
    "InternalErrorsBrakeTripped",
    "Judge",
    "register_handlers",
]

log = structlog.get_logger("claims_validator.handler")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class BatchObserver(Protocol):
    """Told about each batch once it is published (`service.metrics.ServiceMetrics`)."""

    async def observe_batch(
        self, outcomes: Sequence[Outcome], seconds: float, attempts: int
    ) -> None: ...


class InternalErrorsBrakeTripped(Exception):
    """Too many recent records failed with an internal error."""


class InternalErrorBrake:
    """Trips when internal errors exceed `max_share` of the last `window` records (once at
    least `min_records` were seen): a bug that hits every claim stops the service instead of
    dead-lettering the stream (the idea of Sentry arroyo's DlqLimit)."""

    def __init__(self, settings: BrakeSettings) -> None:
        self._max_share = settings.internal_error_max_share
        self._window = settings.internal_error_window
        self._min = settings.internal_error_min_records
        self._batches: collections.deque[tuple[int, int]] = collections.deque()
        self._records = 0
        self._errors = 0

    def check(self, records: int, errors: int) -> None:
        """Raise if the window plus this batch so far (`records`, `errors`) is over the share."""
        total, bad = self._records + records, self._errors + errors
        if total >= self._min and bad > self._max_share * total:
            raise InternalErrorsBrakeTripped(
                f"{bad} of the last {total} records failed with an internal error"
                f" (limit {self._max_share:.0%})"
            )

    def add_batch(self, records: int, errors: int) -> None:
        self._batches.append((records, errors))
        self._records += records
        self._errors += errors
        while self._batches and self._records - self._batches[0][0] >= self._window:
            old_records, old_errors = self._batches.popleft()
            self._records -= old_records
            self._errors -= old_errors


class ClaimsHandler:
    """Judges one batch, publishes the outcomes, then logs and counts what was published."""

    def __init__(
        self,
        table: RuleTable,
        topics: Topics,
        publisher: BatchPublisher,
        clock: Callable[[], datetime] = _utc_now,
        observer: BatchObserver | None = None,
        lifecycle: Lifecycle | None = None,
        brake: InternalErrorBrake | None = None,
        judge: Judge = route,
        limits: Limits = DEFAULT_LIMITS,
        history: HistoryGate | None = None,
        stopping_pause_s: float = 1.0,
    ) -> None:
        self._table = table
        self._topics = topics
        self._publisher = publisher
        self._clock = clock
        self._observer = observer
        self._lifecycle = lifecycle if lifecycle is not None else Lifecycle()
        self._brake = brake
        self._judge = judge
        self._limits = limits
        self._history = history
        self._stopping_pause_s = stopping_pause_s

    async def __call__(self, records: Sequence[InputRecord]) -> None:
        lifecycle = self._lifecycle
        if lifecycle.exit_code is not None:
            # Handed back uncommitted, but after a pause: the consumer refetches a nacked batch
            # at once, and that must not spin while `serve` stops the app.
            await asyncio.sleep(self._stopping_pause_s)
            raise RuntimeError("the service is stopping")
        started = time.perf_counter()
        lifecycle.batch_started()
        try:
            if self._history is None:
                published = await self._publisher.publish(self._judged(records))
            else:
                # Decode first, then one round trip for the batch's histories, then judge:
                # nothing is published (or committed) unless the history answered.
                decoded = [self._decoded(r) for r in records]
                fetching = asyncio.ensure_future(self._history.histories(decoded))
                try:
                    # The rest of the rules run while the database works on the batch.
                    await asyncio.sleep(0)
                    bases = [self._base(d) for d in decoded]
                    waiting = time.perf_counter()
                    histories = await fetching
                    self._history.seconds.observe(time.perf_counter() - waiting)
                except BaseException:
                    fetching.cancel()
                    raise
                published = await self._publisher.publish(
                    self._judged_with(records, decoded, histories, bases)
                )
        except asyncio.CancelledError:
            lifecycle.batch_cancelled()
            raise
        except HistoryUnavailable:
            lifecycle.batch_in_flight = False
            raise
        except PublishStalled as exc:
            lifecycle.batch_in_flight = False
            log.error("publish_stalled", records=len(records), detail=str(exc))
            raise
        except PublishFailed as exc:
            lifecycle.batch_in_flight = False
            lifecycle.fail(ExitCode.PUBLISH_FAILED, str(exc))
            raise
        except InternalErrorsBrakeTripped as exc:
            lifecycle.batch_in_flight = False
            lifecycle.fail(ExitCode.INTERNAL_ERRORS, str(exc))
            raise
        outcomes = published.items
        seconds = time.perf_counter() - started
        # One structlog pass over the batch's verdict lines, written in one call.
        version = self._table.version
        log_verdicts(_verdict_fields(o, version) for o in outcomes if o.kind == "verdict")
        errors = 0
        for o in outcomes:
            if o.kind == "dead_letter":
                errors += o.reason == INTERNAL_ERROR
                log.warning("dead_lettered", **_dead_letter_fields(o))
        flush_logs()
        if self._brake is not None:
            self._brake.add_batch(len(outcomes), errors)
        lifecycle.batch_done()
        if self._observer is not None:
            try:
                await self._observer.observe_batch(outcomes, seconds, published.attempts)
            except Exception as exc:  # the batch is published: never redeliver it for this
                log.warning("observe_batch_failed", error=type(exc).__name__)

    def _judged(self, records: Sequence[InputRecord]) -> Iterator[Outcome]:
        """Each record's outcome as it is judged, so publishing overlaps judging."""
        table, topics, brake, judge = self._table, self._topics, self._brake, self._judge
        limits = self._limits
        now = self._clock()
        errors = 0
        for seen, record in enumerate(records, 1):
            outcome = judge(record, table, topics, now=now, limits=limits)
            if outcome.reason == INTERNAL_ERROR and brake is not None:
                errors += 1
                brake.check(seen, errors)
            yield outcome


    def _decoded(self, record: InputRecord) -> Decoded | None:
        try:
            return decode(record.value, self._limits)
        except Exception:  # a bug: `route` decodes it again and dead-letters it
            return None

    def _base(self, decoded: Decoded | None) -> tuple[Finding, ...] | None:
        """A readable claim's findings without the cross-claim rules (None: `route` decides)."""
        if not isinstance(decoded, Readable):
            return None
        try:
            return evaluate(decoded.event.claim, self._table)
        except Exception:  # a bug: `route` evaluates it again and dead-letters it
            return None

    def _judged_with(
        self,
        records: Sequence[InputRecord],
        decoded: Sequence[Decoded | None],
        histories: Sequence[History | None],
        bases: Sequence[tuple[Finding, ...] | None],
    ) -> Iterator[Outcome]:
        """`_judged` with the batch decoded, each readable claim's history and its findings
        without the cross-claim rules."""
        table, topics, brake, judge = self._table, self._topics, self._brake, self._judge
        limits = self._limits
        now = self._clock()
        errors = 0
        rows = zip(records, decoded, histories, bases, strict=True)
        for seen, (record, d, h, b) in enumerate(rows, 1):
            outcome = judge(
                record, table, topics, now=now, limits=limits, decoded=d, history=h, base=b
            )
            if outcome.reason == INTERNAL_ERROR and brake is not None:
                errors += 1
                brake.check(seen, errors)
            yield outcome


def _verdict_fields(o: Outcome, version: str) -> dict[str, Any]:
    return {
        "claim_id": o.claim_id,
        "verdict": o.verdict,
        "rule_ids": list(o.rule_ids),
        "rule_table_version": version,
        "event_id": o.event_id,
        "topic": o.source.topic,
        "partition": o.source.partition,
        "offset": o.source.offset,
        "published_to": o.out.topic,
        "duration_ms": o.duration_ms,
    }


def _dead_letter_fields(o: Outcome) -> dict[str, Any]:
    return {
        "reason": o.reason,
        "detail": o.detail,
        "topic": o.source.topic,
        "partition": o.source.partition,
        "offset": o.source.offset,
        "published_to": o.out.topic,
        "value_dropped": any(name == "x-dlq-value-dropped" for name, _ in o.out.headers),
        "duration_ms": o.duration_ms,
    }


class Judge(Protocol):
    """One record to its outcome: `service.routing.route`; the Kafka benchmark's pass-through
    hands in one that copies the record unjudged (an outcome of kind `copied`)."""

    def __call__(
        self,
        record: InputRecord,
        table: RuleTable,
        topics: Topics,
        *,
        now: datetime,
        limits: Limits,
        decoded: Decoded | None = None,
        history: History | None = None,
        base: tuple[Finding, ...] | None = None,
    ) -> Outcome: ...


BatchHandler = Callable[[Sequence[InputRecord]], Awaitable[None]]
"""Takes one consumed batch; returns once everything it produced is acknowledged."""


def register_handlers(
    broker: KafkaBroker,
    settings: Settings,
    handler: BatchHandler,
    membership: Membership | None = None,
) -> BatchSubscriber:
    """Subscribe `handler` to the input topic as a batch consumer in the service's group;
    the subscriber (its `consumer` is the aiokafka consumer while it runs).

    `handler` is a `ClaimsHandler`; the Kafka benchmark passes a pass-through one to measure
    the same consumer and producer without the rules."""
    consumer = settings.consumer
    membership = membership if membership is not None else Membership()
    holder: list[BatchSubscriber] = []
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
        fetch_max_bytes=consumer.fetch_max_bytes,
        max_partition_fetch_bytes=consumer.max_partition_fetch_bytes,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        parser=parse_batch(lambda: holder[0].consumer if holder else None),
        decoder=_raw_records,
        listener=membership,
        title="claims.submitted",
        description="Judges claim.submitted events; publishes claim.accepted / claim.flagged.",
    )
    holder.append(subscriber)
    # The subscriber's fetch, replaced on this one instance (FastStream has no hook for it):
    # see service.consuming.GuardedFetch.
    subscriber.get_msg = GuardedFetch(  # type: ignore[method-assign]
        membership, timeout_ms=consumer.batch_timeout_ms, max_records=consumer.batch_size
    )

    @subscriber
    async def judge_claims(records: Any) -> None:
        # `records` is the tuple of aiokafka ConsumerRecords `_raw_records` hands over; typed
        # Any because FastDepends builds a pydantic model of the signature (not used for
        # validation with apply_types=False, but it cannot describe a ConsumerRecord).
        await handler(records)

    return subscriber


async def _raw_records(msg: Any) -> Any:
    """Decoder of the subscriber: the aiokafka records themselves.

    `service.decode` parses each value once; FastStream's default decoder would JSON-decode
    every record first, which is wasted work (and fails on the unreadable ones we dead-letter).
    """
    return msg.raw_message
