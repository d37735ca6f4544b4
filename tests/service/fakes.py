"""Fake producers handed to `create_app(producer=...)`: no patching of aiokafka.

`RecordingProducer` acknowledges every record at once and keeps what it was given.
`FlakyProducer` fails chosen attempts the way aiokafka does: `send()` raising
(e.g. KafkaTimeoutError while metadata is unavailable) or the acknowledgement future failing
(e.g. the batch expired). Both speak the `service.publishing.Producer` protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support import RecordReading

__all__ = ["FlakyProducer", "RecordingProducer", "Sent"]


@dataclass(frozen=True)
class Sent(RecordReading):
    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class RecordingProducer:
    """Acknowledges everything; `acked` lists the records in send order."""

    def __init__(self) -> None:
        self.acked: list[Sent] = []
        self.started = False
        self.stopped = False
        self.sends = 0

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        _check_like_aiokafka(value, key, headers)
        self.sends += 1
        record = Sent(topic, key, value, tuple(headers or ()))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        error = self.fail(self.sends, record)
        if error is None:
            self.acked.append(record)
            future.set_result(None)
        else:
            future.set_exception(error)
        return future

    def fail(self, send_number: int, record: Sent) -> BaseException | None:
        """The error the acknowledgement of this send fails with; None acknowledges it."""
        return None

    def topic(self, name: str) -> list[Sent]:
        return [s for s in self.acked if s.topic == name]


def _check_like_aiokafka(
    value: object, key: object, headers: object
) -> None:
    """The argument checks aiokafka makes (without serializers), so a fake cannot hide a
    call the real producer would refuse: bytes or None; headers a list of (str, bytes)."""
    for name, arg in (("value", value), ("key", key)):
        if arg is not None and not isinstance(arg, bytes):
            raise TypeError(f"{name} must be bytes or None, not {type(arg).__name__}")
    if headers is not None:
        if not isinstance(headers, list):
            raise TypeError(f"Expected list, got {type(headers).__name__}")
        for item in headers:
            if not (
                isinstance(item, tuple)
                and len(item) == 2
                and isinstance(item[0], str)
                and isinstance(item[1], bytes)
            ):
                raise TypeError(f"header {item!r} is not a (str, bytes) pair")


class FlakyProducer(RecordingProducer):
    """Fails the sends `should_fail(send_number, record)` picks, at send time or on the ack."""

    def __init__(
        self,
        should_fail: Callable[[int, Sent], BaseException | None],
        *,
        raise_on_send: bool,
    ) -> None:
        super().__init__()
        self._should_fail = should_fail
        self._raise_on_send = raise_on_send

    def fail(self, send_number: int, record: Sent) -> BaseException | None:
        error = self._should_fail(send_number, record)
        if error is not None and self._raise_on_send:
            raise error
        return error
