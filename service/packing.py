"""Sending one attempt's records: packed into per-partition record batches with aiokafka's batch
API (`create_batch()` / `send_batch()`), or one `send()` each for a producer without it.

A keyed record goes to the partition aiokafka's default partitioner (the Java client's) picks,
worked out with a compiled murmur2 (`key_partition`), so every verdict of a claim lands on one
partition, in order; a record without a key goes
through `send()`. Packed batches are handed over while the next records are judged, but only
once the previous ones are acknowledged, so handing them over never waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, Final, Protocol

from aiokafka.errors import MessageSizeTooLargeError  # type: ignore[import-untyped]
from aiokafka.record.default_records import (  # type: ignore[import-untyped]
    DefaultRecordBatchBuilder,
)
from murmurhash2 import murmurhash2

from service.producers import BatchingProducer, Producer, RecordBatchBuilder
from service.routing import OutRecord

__all__ = ["CHUNK", "Packer", "key_partition", "send_each"]

CHUNK = 200
"""Records judged between two looks at the producer: packing their partitions, handing over the
batches whose predecessors are acknowledged, and a yield to the event loop so the producer's
sender task ships them."""

_MURMUR2_SEED: Final = 0x9747B28C
"""The seed of the Java client's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`)."""


def key_partition(key: bytes, partitions: Sequence[int]) -> int:
    """The partition the Java client's (and aiokafka's `DefaultPartitioner`) puts `key` on:
    murmur2 of the key, made positive, modulo the count, indexing the sorted partition ids."""
    return partitions[(murmurhash2(key, _MURMUR2_SEED) & 0x7FFFFFFF) % len(partitions)]


class _Carrier(Protocol):
    """An item to publish (`service.publishing.Publishable`): the record it carries."""

    @property
    def out(self) -> OutRecord: ...


class _Open:
    """A record batch being filled for one partition, and the indexes of its records."""

    __slots__ = ("builder", "indexes")

    def __init__(self, builder: RecordBatchBuilder) -> None:
        self.builder = builder
        self.indexes: list[int] = []


class Packer:
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

    async def add(self, sent: Sequence[tuple[int, _Carrier]], start: int, stop: int) -> None:
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
            partition = key_partition(key, partitions)
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


async def send_each(
    producer: Producer,
    items: Iterable[tuple[int, _Carrier]],
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
