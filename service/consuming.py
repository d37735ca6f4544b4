"""The consumer side of the Kafka shell: every fetched record reaches the handler, whatever its
headers, and a record the client itself cannot read stops its own partition, loudly.

FastStream's batch subscriber is given three things here:

* `parse_batch`, its parser: the records as they came, headers left as bytes. FastStream's own
  parser decodes every header value as UTF-8 and fails the whole batch on one that is not (or
  on a null value), after the records were fetched: the batch would be neither judged nor
  rewound, and the next commit would pass over it.
* `GuardedFetch`, its fetch: `getmany()` as usual; when the client fails to read a record
  (aiokafka decodes header keys as UTF-8, checks CRCs and decompresses inside the fetch), every
  partition is rewound to its committed offset and read again one partition at a time, and the
  records before the unreadable one are handed on. The partition holding the record that cannot
  be read is paused at that offset, reported once as `partition_stopped` (an error line, a
  metric, readiness false) and left for an operator: never skipped, never fetched in a loop.
* `Membership`, its rebalance listener: whether the consumer is in the group and what it holds.

Transient client errors (the broker is away, a leader moved) are left to FastStream's consume
loop, which logs them and tries again after a pause.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import structlog
from aiokafka import ConsumerRebalanceListener, TopicPartition  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    ConsumerStoppedError,
    CorruptRecordException,
    KafkaError,
    UnsupportedCodecError,
)
from faststream.kafka.message import FAKE_CONSUMER, KafkaAckableMessage

__all__ = [
    "GuardedFetch",
    "Membership",
    "StoppedPartition",
    "parse_batch",
]

log = structlog.get_logger("claims_validator.consumer")

_UNREADABLE_KAFKA_ERRORS: Final = (CorruptRecordException, UnsupportedCodecError)
"""Client errors about the bytes of a record: fetching them again gives the same error."""


def _is_unreadable(exc: BaseException) -> bool:
    """True for an error reading a record (not for the broker or the network)."""
    if isinstance(exc, ConsumerStoppedError):
        return False
    if isinstance(exc, KafkaError):
        return isinstance(exc, _UNREADABLE_KAFKA_ERRORS)
    return isinstance(exc, Exception)


def parse_batch(consumer: Callable[[], Any]) -> Callable[..., Any]:
    """The subscriber's parser: a FastStream message around the raw records, headers untouched.

    `consumer()` is the subscriber's aiokafka consumer (committed through on ack)."""

    async def parse(records: tuple[Any, ...]) -> KafkaAckableMessage:
        first, last = records[0], records[-1]
        message_id = f"{first.offset}-{last.offset}-{first.timestamp}"
        return KafkaAckableMessage(
            body=[r.value or b"" for r in records],
            headers={},
            batch_headers=[],
            reply_to="",
            content_type=None,
            message_id=message_id,
            correlation_id=message_id,
            raw_message=records,
            path={},
            consumer=consumer() or FAKE_CONSUMER,
        )

    return parse


async def _positions(consumer: Any) -> dict[TopicPartition, int]:
    """Each assigned, unpaused partition's position (no request: aiokafka knows it once it has
    fetched; a partition being reset or revoked meanwhile is left out)."""
    out: dict[TopicPartition, int] = {}
    paused = consumer.paused()
    for tp in consumer.assignment():
        if tp in paused:
            continue
        try:
            out[tp] = await consumer.position(tp)
        except KafkaError:
            continue
    return out


@dataclass(frozen=True, slots=True)
class StoppedPartition:
    """A partition paused at a record the client could not read."""

    topic: str
    partition: int
    offset: int
    error: str
    """The error's type name (its text may quote record bytes)."""


class Membership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Whether the consumer is in its group, and the partitions stopped at unreadable records.

    Out of the group from the start of a rebalance (partitions revoked) until the next
    assignment; a revoked partition is no longer ours to report as stopped."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self.in_group = False
        self.assigned: frozenset[TopicPartition] = frozenset()
        self.stopped: dict[TopicPartition, StoppedPartition] = {}
        self._on_change = on_change

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.in_group = False
        for tp in revoked:
            self.stopped.pop(tp, None)
        self._on_change()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.assigned = frozenset(assigned)
        self.in_group = True
        self._on_change()

    async def left(self) -> None:
        """The consumer stopped: no longer in any group."""
        self.in_group = False
        self.assigned = frozenset()
        self.stopped.clear()
        self._on_change()

    def stop(self, tp: TopicPartition, offset: int, exc: BaseException) -> StoppedPartition:
        stopped = self.stopped[tp] = StoppedPartition(
            tp.topic, tp.partition, offset, type(exc).__name__
        )
        self._on_change()
        return stopped


class GuardedFetch:
    """The subscriber's `get_msg`: one batch of records, or a stopped partition, never a loop."""

    def __init__(
        self, membership: Membership, *, timeout_ms: int, max_records: int
    ) -> None:
        self._membership = membership
        self._timeout_ms = timeout_ms
        self._max_records = max_records

    async def __call__(self, consumer: Any) -> tuple[Any, ...]:
        before = await _positions(consumer)
        try:
            batches = await consumer.getmany(
                timeout_ms=self._timeout_ms, max_records=self._max_records
            )
        except Exception as exc:
            if not _is_unreadable(exc):
                raise
            return await self._isolate(consumer, before)
        records: list[Any] = []
        for part in batches.values():
            records.extend(part)
        return tuple(records)

    async def _isolate(
        self, consumer: Any, before: dict[TopicPartition, int]
    ) -> tuple[Any, ...]:
        """Read partition by partition from where the failed fetch began; stop the one that
        fails."""
        active = sorted(
            set(consumer.assignment()) - set(consumer.paused()),
            key=lambda tp: (tp.topic, tp.partition),
        )
        if not active:
            return ()
        # Records drained by the failed call were never handed on: read them again.
        for tp in active:
            if tp in before:
                consumer.seek(tp, before[tp])
            else:
                await consumer.seek_to_committed(tp)
        records: list[Any] = []
        for tp in active:
            records.extend(await self._read_partition(consumer, tp))
        return tuple(records)

    async def _read_partition(self, consumer: Any, tp: TopicPartition) -> Sequence[Any]:
        """The records of `tp` up to the first one the client cannot read (which stops it)."""
        start = await consumer.position(tp)
        try:
            got = await consumer.getmany(
                tp, timeout_ms=self._timeout_ms, max_records=self._max_records
            )
            return list(got.get(tp, ()))
        except Exception as exc:
            if not _is_unreadable(exc):
                raise
        consumer.seek(tp, start)
        records: list[Any] = []
        for _ in range(self._max_records):
            try:
                got = await consumer.getmany(tp, timeout_ms=self._timeout_ms, max_records=1)
            except Exception as exc:
                if not _is_unreadable(exc):
                    raise
                offset = await consumer.position(tp)
                consumer.seek(tp, offset)
                consumer.pause(tp)
                stopped = self._membership.stop(tp, offset, exc)
                log.error(
                    "partition_stopped",
                    topic=stopped.topic,
                    partition=stopped.partition,
                    offset=stopped.offset,
                    error=stopped.error,
                    action="the client cannot read this record; the partition is paused at it "
                    "and nothing after it is judged until an operator moves the group's offset",
                )
                break
            part = got.get(tp, ())
            if not part:
                break
            records.extend(part)
        return records
