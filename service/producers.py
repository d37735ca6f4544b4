"""The verdict producer: what every producer must offer, how the real one is built, and the slot
that owns it (started before the consumer, stopped after it, replaced when its state breaks).

The producer is an argument everywhere (a `Producer`), so tests hand in fakes instead of
patching aiokafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Final, Protocol, cast, runtime_checkable

import structlog
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]  # no py.typed marker
from faststream.kafka.security import parse_security

from service.settings import Settings

__all__ = [
    "MAX_REQUEST_SIZE",
    "BatchingProducer",
    "Producer",
    "ProducerSlot",
    "RecordBatchBuilder",
    "build_producer",
]

log = structlog.get_logger("claims_validator.producer")

MAX_REQUEST_SIZE = 1_048_576
"""The producer's `max_request_size` (aiokafka's default); a record estimated larger fails as
`send()` would fail it, with MessageSizeTooLargeError."""


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


