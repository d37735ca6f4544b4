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
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar, cast, runtime_checkable

import structlog
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]  # no py.typed marker
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
from aiokafka.partitioner import DefaultPartitioner  # type: ignore[import-untyped]
from aiokafka.record.default_records import (  # type: ignore[import-untyped]
    DefaultRecordBatchBuilder,
)
from faststream.kafka.security import parse_security

from service.routing import OutRecord
from service.settings import Settings

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
    "MAX_REQUEST_SIZE",
    "PRODUCER_STATE_ERRORS",
    "REFUSED_ERRORS",
    "BatchPublisher",
    "BatchingProducer",
    "Producer",
    "PublishFailed",
    "PublishHealth",
    "PublishObserver",
    "PublishStalled",
    "Publishable",
    "Published",
    "RecordBatchBuilder",
    "build_producer",
]

log = structlog.get_logger("claims_validator.publish")

CHUNK = 200
"""Records judged between two looks at the producer: packing their partitions, handing over the
batches whose predecessors are acknowledged, and a yield to the event loop so the producer's
sender task ships them."""

MAX_REQUEST_SIZE = 1_048_576
"""The producer's `max_request_size` (aiokafka's default); a record estimated larger fails as
`send()` would fail it, with MessageSizeTooLargeError."""

_ERROR_TEXT_LIMIT = 300
_PARTITIONER: Final = DefaultPartitioner()


class Producer(Protocol):
    """The part of `aiokafka.AIOKafkaProducer` every producer must have."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes | None]] | None = None,
    ) -> Awaitable[Any]: ...


class RecordBatchBuilder(Protocol):
    """`aiokafka.producer.message_accumulator.BatchBuilder`: one partition's record batch."""

    def append(
        self,
        *,
        timestamp: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
    ) -> object | None:
        """Metadata of the appended record; None when the batch is full (the first record of
        an empty batch is always taken)."""

    def close(self) -> None: ...


@runtime_checkable
class BatchingProducer(Producer, Protocol):
    """A producer with aiokafka's batch API (`AIOKafkaProducer` has it)."""

    def create_batch(self) -> RecordBatchBuilder: ...

    async def send_batch(
        self, batch: RecordBatchBuilder, topic: str, *, partition: int
    ) -> Awaitable[Any]: ...

    async def partitions_for(self, topic: str) -> Collection[int]: ...


def build_producer(settings: Settings) -> Producer:
    """The verdict producer: acks from all in-sync replicas, idempotent, batched.

    Must be called inside the running event loop (aiokafka binds to it).
    """
    kafka = settings.kafka
    producer: Producer = AIOKafkaProducer(
        bootstrap_servers=kafka.servers,
        client_id=f"{kafka.client_id}-producer",
        request_timeout_ms=kafka.request_timeout_ms,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.publish.linger_ms,
        max_batch_size=settings.publish.max_batch_size,
        max_request_size=MAX_REQUEST_SIZE,
        compression_type=None
        if settings.publish.compression_type == "none"
        else settings.publish.compression_type,
        **parse_security(kafka.security()),
    )
    return producer


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
            packer = _Packer(producer, self._max_request_size)
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
        return await _send_each(producer, items, sent=sent)


def _numbered(items: Iterable[P], done: list[P]) -> Iterator[tuple[int, P]]:
    """Each item with its place in `done`, where it is kept (and replaced by a fallback)."""
    for item in items:
        done.append(item)
        yield len(done) - 1, item


def _detail(error: BaseException) -> str:
    return str(error)[:_ERROR_TEXT_LIMIT]


class _Open:
    """A record batch being filled for one partition, and the indexes of its records."""

    __slots__ = ("builder", "indexes")

    def __init__(self, builder: RecordBatchBuilder) -> None:
        self.builder = builder
        self.indexes: list[int] = []


class _Packer:
    """One attempt at sending a list of records through per-partition record batches."""

    def __init__(self, producer: BatchingProducer, max_request_size: int) -> None:
        self._producer = producer
        self._max_request_size = max_request_size
        self._partitions: dict[str, list[int] | BaseException] = {}
        """Sorted partition ids by topic, or why they could not be had (for this attempt)."""
        self._open: dict[tuple[str, int], _Open] = {}
        self._acks: list[tuple[Awaitable[Any], Sequence[int]]] = []
        self._handed_over = 0
        """How many of `_acks` were there at the last hand-over."""
        self._failures: dict[int, BaseException] = {}

    async def add(self, sent: Sequence[tuple[int, Publishable]], start: int, stop: int) -> None:
        """Pack `sent[start:stop]` into the open batches (sending any that fills up)."""
        keyed: list[int] = []
        keys: list[bytes] = []
        for index in range(start, stop):
            rec = sent[index][1].out
            key = rec.key
            if key is None:
                await self._send_keyless(index, rec)
            else:
                keyed.append(index)
                keys.append(key)
        for index, key in zip(keyed, keys, strict=True):
            rec = sent[index][1].out
            partitions = self._partitions.get(rec.topic)
            if partitions is None:
                partitions = self._partitions[rec.topic] = await self._partitions_of(rec.topic)
            if isinstance(partitions, BaseException):
                self._failures[index] = partitions
                continue
            # Where aiokafka's (and the Java client's) default partitioner puts the key.
            partition = _PARTITIONER(key, partitions, partitions)
            await self._append(index, rec, (rec.topic, partition))

    async def _partitions_of(self, topic: str) -> list[int] | BaseException:
        try:
            return sorted(await self._producer.partitions_for(topic))
        except Exception as exc:  # e.g. no metadata: the records are retried
            return exc

    async def _append(self, index: int, rec: OutRecord, tp: tuple[str, int]) -> None:
        headers = list(rec.headers)  # aiokafka insists on a list
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(rec.key, rec.value, headers)
        if size > self._max_request_size:
            # What `send()` raises for it; a dead letter is then resent without its value.
            self._failures[index] = MessageSizeTooLargeError(
                f"The message is {size} bytes when serialized, over max_request_size"
            )
            return
        batch = self._open.get(tp)
        if batch is None:
            batch = self._open[tp] = _Open(self._producer.create_batch())
        builder = batch.builder
        if builder.append(timestamp=None, key=rec.key, value=rec.value, headers=headers) is None:
            # Full: send it, and start the next one with this record (an empty batch takes
            # any record).
            await self._send(tp, batch)
            batch = self._open[tp] = _Open(self._producer.create_batch())
            batch.builder.append(timestamp=None, key=rec.key, value=rec.value, headers=headers)
        batch.indexes.append(index)

    async def _send(self, tp: tuple[str, int], batch: _Open) -> None:
        batch.builder.close()
        try:
            ack = await self._producer.send_batch(batch.builder, tp[0], partition=tp[1])
        except Exception as exc:  # every failure is retried
            for index in batch.indexes:
                self._failures[index] = exc
        else:
            self._acks.append((ack, batch.indexes))

    async def _send_keyless(self, index: int, rec: OutRecord) -> None:
        """A record without a key: `send()`, whose partitioner picks any available partition."""
        try:
            ack = await self._producer.send(
                rec.topic, rec.value, key=None, headers=list(rec.headers)
            )
        except Exception as exc:  # every failure is retried (MessageSizeTooLargeError too)
            self._failures[index] = exc
        else:
            self._acks.append((ack, (index,)))

    async def hand_over(self, *, only_if_idle: bool) -> None:
        """Send the open batches; with `only_if_idle`, only once everything handed over before
        is acknowledged.

        aiokafka keeps one produce request in flight per broker and one queued batch per
        partition; sending a second queued batch would wait for the first to leave, which
        would stall the judging of the next records for a broker round trip."""
        if only_if_idle and not all(_done(ack) for ack, _ in self._acks[self._handed_over :]):
            return
        self._handed_over = len(self._acks)
        batches, self._open = self._open, {}
        for tp, batch in batches.items():
            await self._send(tp, batch)

    async def acknowledged(self) -> dict[int, BaseException]:
        """Await every acknowledgement; the failed records by index."""
        for ack, indexes in self._acks:
            try:
                await ack
            except Exception as exc:  # every failure is retried
                for index in indexes:
                    self._failures[index] = exc
        return self._failures


def _done(ack: Awaitable[Any]) -> bool:
    return isinstance(ack, asyncio.Future) and ack.done()


async def _send_each(
    producer: Producer,
    items: Iterable[tuple[int, Publishable]],
    *,
    sent: list[tuple[int, Any]],
) -> dict[int, BaseException]:
    """One `send()` per record (a producer without the batch API), then every
    acknowledgement; the failures by index in `sent`."""
    acks: list[Awaitable[Any] | None] = []
    failures: dict[int, BaseException] = {}
    for index, item in enumerate(items):
        sent.append(item)
        rec = item[1].out
        if index % CHUNK == CHUNK - 1:
            # Let the producer's sender task ship what is ready while we go on.
            await asyncio.sleep(0)
        try:
            # aiokafka insists on a list of (str, bytes) headers.
            acks.append(
                await producer.send(rec.topic, rec.value, key=rec.key, headers=list(rec.headers))
            )
        except Exception as exc:  # every failure is retried
            acks.append(None)
            failures[index] = exc
    for index, ack in enumerate(acks):
        if ack is None:
            continue
        try:
            await ack
        except Exception as exc:  # every failure is retried
            failures[index] = exc
    return failures


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
