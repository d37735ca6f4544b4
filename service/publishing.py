"""Publishing a batch of records until the broker has acknowledged every one of them.

At-least-once hinges on this module: the consumer commits a batch's offsets only after
`BatchPublisher.publish()` returns, and it returns only when every record (or its fallback) was
acknowledged (producer `acks=all`, idempotent). Failures are classified:

* retriable (broker down, timeout, leader change, a missing topic): resent with exponential
  backoff, counted and logged as `publish_retry` as they happen, until the batch deadline
  (`PublishStalled`: the batch is handed back uncommitted) and, across batches, until the
  give-up bound (`PublishFailed`: the service exits);
* the producer's own state is broken (out-of-order sequence, unknown producer id, fenced or
  invalid epoch): never resent on the same producer; it is rebuilt, a bounded number of times;
* the broker refuses the record itself (too large, invalid): replaced at once by its fallback.

On SIGTERM the shutdown bound cancels the retry loop: the batch is then not committed and is
consumed again after the restart.

With aiokafka's producer (a `BatchingProducer`) the records are packed into per-partition record
batches here (`create_batch()` / `send_batch()`) instead of one `send()` each. The partition of
a keyed record is the one aiokafka's default partitioner (the Java client's) picks, so every
verdict of a claim lands on one partition, in order; a record without a key goes through
`send()`. Packed batches are handed to the producer while the next records are judged, but only
when the previous ones are acknowledged, so handing them over never waits; everything is handed
over at the end and every acknowledgement awaited. A producer without the batch API (the test
fakes) gets one `send()` per record. The producer is an argument (a `Producer`), so tests hand in
fakes instead of patching aiokafka.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar, cast

import structlog
from aiokafka.errors import (  # type: ignore[import-untyped]
    CorruptRecordException,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    InvalidTopicError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnknownProducerId,
)

from service.packing import CHUNK, Packer, send_each
from service.producers import MAX_REQUEST_SIZE, BatchingProducer, Producer
from service.routing import OutRecord

PRODUCER_STATE_ERRORS: Final = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)
"""The idempotent producer's own state is broken: resending on it fails forever."""

REFUSED_ERRORS: Final = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTopicError,
)
"""The broker refuses the record itself: sending it again can never succeed."""

__all__ = [
    "PRODUCER_STATE_ERRORS",
    "REFUSED_ERRORS",
    "BatchPublisher",
    "PublishFailed",
    "PublishHealth",
    "PublishObserver",
    "PublishStalled",
    "Publishable",
    "Published",
]

log = structlog.get_logger("claims_validator.publish")

_ERROR_TEXT_LIMIT = 300


class PublishStalled(Exception):
    """A batch could not be published within its deadline; it is not committed and will be
    consumed again (the consumer stays in its group meanwhile)."""


class PublishFailed(Exception):
    """Publishing cannot succeed in this process: failing past the give-up bound, a producer
    that stays broken after rebuilds, or a record no fallback can carry. The process exits
    (`ExitCode.PUBLISH_FAILED`) so the orchestrator restarts it; nothing was committed."""


class PublishObserver(Protocol):
    """Told about every retry and rebuild as it happens (`service.metrics.ServiceMetrics`)."""

    def publish_retried(self, error: str) -> None: ...

    def producer_rebuilt(self) -> None: ...


class _Quiet:
    def publish_retried(self, error: str) -> None:
        return None

    def producer_rebuilt(self) -> None:
        return None


class Publishable(Protocol):
    """What the publisher sends: a record, and what replaces it if the broker refuses it for
    good (its size, its content); `service.routing.Outcome` and `OutRecord` are both."""

    @property
    def out(self) -> OutRecord: ...

    def refused(self) -> Publishable | None: ...


P = TypeVar("P", bound=Publishable)


@dataclass(frozen=True, slots=True)
class Published(Generic[P]):
    """The outcome of `BatchPublisher.publish()`: what was acknowledged, in input order (a
    refused item replaced by its fallback), and how many attempts it took."""

    items: list[P]
    attempts: int


class PublishHealth:
    """Since when publishing has been failing without a success in between (None: it works)."""

    def __init__(self) -> None:
        self.failing_since: float | None = None

    def failed(self, now: float) -> None:
        if self.failing_since is None:
            self.failing_since = now

    def succeeded(self) -> None:
        self.failing_since = None


class BatchPublisher:
    """Sends records and waits for all acknowledgements, retrying failures with backoff.

    Retriable errors are retried with backoff until `deadline_s` has passed for the batch
    (`PublishStalled`); once publishing has been failing for `give_up_after_s` across
    batches, `PublishFailed`. A broken producer state (out-of-order sequence, unknown producer
    id, fenced or invalid epoch) is never retried on the same producer: `rebuild()` replaces it
    and the failed records are resent, at most `max_rebuilds` times per batch. A record the
    broker refuses for good (too large, invalid) is replaced by its fallback at once."""

    def __init__(
        self,
        producer: Callable[[], Producer],
        *,
        initial_backoff_s: float,
        max_backoff_s: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_request_size: int = MAX_REQUEST_SIZE,
        deadline_s: float = float("inf"),
        give_up_after_s: float = float("inf"),
        rebuild: Callable[[], Awaitable[None]] | None = None,
        max_rebuilds: int = 3,
        observer: PublishObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._producer = producer
        self._initial = initial_backoff_s
        self._max = max_backoff_s
        self._sleep = sleep
        self._max_request_size = max_request_size
        self._deadline_s = deadline_s
        self._give_up_after_s = give_up_after_s
        self._rebuild = rebuild
        self._max_rebuilds = max_rebuilds
        self._observer: PublishObserver = observer if observer is not None else _Quiet()
        self._clock = clock
        self.health = PublishHealth()

    async def publish(self, items: Iterable[P]) -> Published[P]:
        """Return once the broker acknowledged every item (or its fallback).

        `items` is consumed lazily, so a generator that judges claims one by one overlaps
        that work with the producer shipping the first records (see `CHUNK`).
        """
        started = self._clock()
        done: list[P] = []
        pending: list[tuple[int, P]] = []
        failures = await self._send_all(_numbered(items, done), sent=pending)
        attempt = 1
        backoff = self._initial
        rebuilds = 0
        while failures:
            now = self._clock()
            first = next(iter(failures.values()))
            broken = any(isinstance(e, PRODUCER_STATE_ERRORS) for e in failures.values())
            refused_only = all(isinstance(e, REFUSED_ERRORS) for e in failures.values())
            pending = _to_resend(pending, failures, done)
            log.warning(
                "publish_retry",
                attempt=attempt,
                failed=len(failures),
                resending=len(pending),
                backoff_s=0.0 if refused_only else round(backoff, 3),
                error=type(first).__name__,
                error_detail=_detail(first),
            )
            self._observer.publish_retried(type(first).__name__)
            if not refused_only:
                self.health.failed(now)
                self._check_bounds(started, now, backoff, first)
                if broken:
                    rebuilds += 1
                    await self._replace_producer(rebuilds, first)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._max)
            attempt += 1
            resend, pending = pending, []
            failures = await self._send_all(resend, sent=pending)
        self.health.succeeded()
        return Published(done, attempt)

    def _check_bounds(
        self, started: float, now: float, backoff: float, error: BaseException
    ) -> None:
        since = self.health.failing_since
        if since is not None and now - since >= self._give_up_after_s:
            raise PublishFailed(
                f"publishing has failed for {now - since:.0f} s"
                f" (give-up bound {self._give_up_after_s:g} s); last error {type(error).__name__}"
            )
        if now + backoff - started > self._deadline_s:
            raise PublishStalled(
                f"batch not acknowledged within {self._deadline_s:g} s;"
                f" last error {type(error).__name__}"
            )

    async def _replace_producer(self, rebuilds: int, error: BaseException) -> None:
        if self._rebuild is None or rebuilds > self._max_rebuilds:
            raise PublishFailed(
                f"the producer stays broken ({type(error).__name__})"
                f" after {rebuilds - 1} rebuild(s)"
            )
        log.warning("producer_rebuild", error=type(error).__name__, rebuild=rebuilds)
        await self._rebuild()
        self._observer.producer_rebuilt()

    async def _send_all(
        self, items: Iterable[tuple[int, P]], *, sent: list[tuple[int, P]]
    ) -> dict[int, BaseException]:
        """Send every item (appending it to `sent`), then await every acknowledgement;
        the failures by index in `sent`."""
        producer = self._producer()
        if isinstance(producer, BatchingProducer):
            packer = Packer(producer, self._max_request_size)
            start = 0
            for item in items:
                sent.append(item)
                if len(sent) - start == CHUNK:
                    await packer.add(sent, start, len(sent))
                    start = len(sent)
                    await packer.hand_over(only_if_idle=True)
                    # Let the producer's sender task ship what was handed over.
                    await asyncio.sleep(0)
            await packer.add(sent, start, len(sent))
            await packer.hand_over(only_if_idle=False)
            return await packer.acknowledged()
        return await send_each(producer, items, sent=sent)


def _numbered(items: Iterable[P], done: list[P]) -> Iterator[tuple[int, P]]:
    """Each item with its place in `done`, where it is kept (and replaced by a fallback)."""
    for item in items:
        done.append(item)
        yield len(done) - 1, item


def _detail(error: BaseException) -> str:
    return str(error)[:_ERROR_TEXT_LIMIT]


def _to_resend(
    sent: Sequence[tuple[int, P]], failures: dict[int, BaseException], done: list[P]
) -> list[tuple[int, P]]:
    """The failed items, plus any later item with the key of a failed one, in order.

    Resending a later record of the same key after the failed one keeps the per-key order a
    consumer sees (the last verdict of a claim stays the newest). An item the broker refused for
    good is replaced by its fallback, in `done` too; without one, `PublishFailed`.
    """
    failed_keys: set[bytes | None] = set()
    out: list[tuple[int, P]] = []
    for index, (place, item) in enumerate(sent):
        exc = failures.get(index)
        if exc is None and item.out.key not in failed_keys:
            continue
        if exc is not None:
            failed_keys.add(item.out.key)
        if isinstance(exc, REFUSED_ERRORS):
            fallback = item.refused()
            if fallback is None:
                raise PublishFailed(
                    f"the broker refused a record for good ({type(exc).__name__})"
                    " and it has no fallback"
                )
            item = cast(P, fallback)
            done[place] = item
        out.append((place, item))
    return out
