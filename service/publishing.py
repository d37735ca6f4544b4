"""Publishing a batch of records until the broker has acknowledged every one of them.

At-least-once hinges on this module: the consumer commits a batch's offsets only after
`BatchPublisher.publish()` returns, and it returns only when every record was acknowledged
(producer `acks=all`, idempotent). A failed send (broker down, timeout, leader change) is
retried with exponential backoff, forever, and logged as `publish_retry`; nothing is skipped.
On SIGTERM the shutdown bound cancels the retry loop: the batch is then not committed and is
consumed again after the restart.

All records are `send()`-ed before any acknowledgement is awaited, so a batch costs about one
broker round trip rather than one per record. The producer is an argument (a `Producer`), so
tests hand in a fake one instead of patching aiokafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]  # no py.typed marker
from aiokafka.errors import MessageSizeTooLargeError  # type: ignore[import-untyped]
from faststream.kafka.security import parse_security

from service.routing import OutRecord
from service.settings import Settings

__all__ = ["BatchPublisher", "Producer", "build_producer"]

log = structlog.get_logger("claims_validator.publish")

YIELD_EVERY = 200
"""Records sent between two yields to the event loop within one batch."""

_ERROR_TEXT_LIMIT = 300


class Producer(Protocol):
    """The part of `aiokafka.AIOKafkaProducer` we use."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]: ...


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
        compression_type=None
        if settings.publish.compression_type == "none"
        else settings.publish.compression_type,
        **parse_security(kafka.security()),
    )
    return producer


class BatchPublisher:
    """Sends records and waits for all acknowledgements, retrying failures with backoff."""

    def __init__(
        self,
        producer: Callable[[], Producer],
        *,
        initial_backoff_s: float,
        max_backoff_s: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._producer = producer
        self._initial = initial_backoff_s
        self._max = max_backoff_s
        self._sleep = sleep

    async def publish(self, records: Iterable[OutRecord]) -> int:
        """Return once the broker acknowledged every record; the result is the number of
        attempts it took (1 when nothing failed).

        `records` is consumed lazily, so a generator that judges claims one by one overlaps
        that work with the producer shipping the first records (see `YIELD_EVERY`).
        """
        pending: list[OutRecord] = []
        failures = await self._send_all(records, sent=pending)
        attempt = 1
        backoff = self._initial
        while failures:
            first = next(iter(failures.values()))
            pending = _to_resend(pending, failures)
            log.warning(
                "publish_retry",
                attempt=attempt,
                failed=len(failures),
                resending=len(pending),
                backoff_s=round(backoff, 3),
                error=type(first).__name__,
                error_detail=str(first)[:_ERROR_TEXT_LIMIT],
            )
            await self._sleep(backoff)
            backoff = min(backoff * 2, self._max)
            attempt += 1
            resend, pending = pending, []
            failures = await self._send_all(resend, sent=pending)
        return attempt

    async def _send_all(
        self, records: Iterable[OutRecord], *, sent: list[OutRecord]
    ) -> dict[int, BaseException]:
        """Send every record (appending it to `sent`), then await every acknowledgement;
        the failures by index in `sent`."""
        producer = self._producer()
        acks: list[Awaitable[Any] | None] = []
        failures: dict[int, BaseException] = {}
        for index, rec in enumerate(records):
            sent.append(rec)
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                # Let the producer's sender task ship what is ready while we go on.
                await asyncio.sleep(0)
            try:
                # aiokafka insists on a list of (str, bytes) headers.
                acks.append(
                    await producer.send(
                        rec.topic, rec.value, key=rec.key, headers=list(rec.headers)
                    )
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


def _to_resend(sent: Sequence[OutRecord], failures: dict[int, BaseException]) -> list[OutRecord]:
    """The failed records, plus any later record with the key of a failed one, in order.

    Resending a later record of the same key after the failed one keeps the per-key order a
    consumer sees (the last verdict of a claim stays the newest). A record the broker refused
    as too large is replaced by its fallback (a dead-letter record without its value).
    """
    failed_keys: set[bytes | None] = set()
    out: list[OutRecord] = []
    for index, rec in enumerate(sent):
        exc = failures.get(index)
        if exc is None and rec.key not in failed_keys:
            continue
        if exc is not None:
            failed_keys.add(rec.key)
        if isinstance(exc, MessageSizeTooLargeError) and rec.fallback is not None:
            rec = rec.fallback
        out.append(rec)
    return out
