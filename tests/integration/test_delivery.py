"""Commit-after-publish against a real broker, with the app running in this process.

The app gets its producer through `create_app(producer=...)`: a real aiokafka producer wrapped
so the test can hold back the acknowledgements, or make `send()` time out a few times (as
aiokafka does while a broker is unreachable). Committed offsets are read from the broker.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.errors import KafkaTimeoutError  # type: ignore[import-untyped]
from faststream import TestApp
from structlog.testing import capture_logs

from service.app import create_app
from service.ruletable.compiled import RuleTable
from service.settings import (
    ConsumerSettings,
    KafkaSettings,
    PublishSettings,
    Settings,
    TopicSettings,
)
from service.tables import default_table
from tests.integration.conftest import (
    Topics,
    committed_and_end,
    produce,
    read_topics,
    wait_committed_to_end,
)
from tests.service.claims import claim_event, encode

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


class WrappedProducer:
    """A real idempotent producer; `hold` keeps acknowledgements back, `send_timeouts` makes
    the first sends raise KafkaTimeoutError."""

    def __init__(self, bootstrap: str, *, send_timeouts: int = 0) -> None:
        self._bootstrap = bootstrap
        self._real: Any = None
        self.hold = asyncio.Event()
        self.hold.set()
        self.sends = 0
        self._timeouts_left = send_timeouts

    async def start(self) -> None:
        self._real = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True
        )
        await self._real.start()

    async def stop(self) -> None:
        await self._real.stop()

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        if self._timeouts_left > 0:
            self._timeouts_left -= 1
            raise KafkaTimeoutError()
        ack = await self._real.send(topic, value, key=key, headers=headers)
        self.sends += 1
        return self._acknowledged(ack)

    async def _acknowledged(self, ack: Any) -> Any:
        await self.hold.wait()
        return await ack


def _settings(bootstrap: str, topics: Topics) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap),
        topics=TopicSettings(
            submitted=topics.submitted,
            accepted=topics.accepted,
            flagged=topics.flagged,
            dead_letter=topics.dead_letter,
        ),
        consumer=ConsumerSettings(group_id=topics.group, batch_timeout_ms=50),
        publish=PublishSettings(retry_initial_s=0.05, retry_max_s=0.2),
        shutdown_timeout_s=5,
    )


@pytest.fixture(scope="module")
def table() -> RuleTable:
    return default_table()


async def _until(predicate: Any, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s} s")
        await asyncio.sleep(0.05)


async def test_offsets_are_not_committed_until_the_broker_acknowledged_the_verdicts(
    kafka_bootstrap: str, topics: Topics, table: RuleTable
) -> None:
    claims = [(f"H-{i}".encode(), encode(claim_event(f"H-{i}"))) for i in range(10)]
    await produce(kafka_bootstrap, topics.submitted, claims)
    producer = WrappedProducer(kafka_bootstrap)
    producer.hold.clear()
    app = create_app(_settings(kafka_bootstrap, topics), table, producer=producer)

    async with TestApp(app):
        await _until(lambda: producer.sends == 10, "10 verdicts sent")
        # Longer than aiokafka's 5 s auto-commit interval, so auto-commit would show too.
        await asyncio.sleep(6)
        held, ends = await committed_and_end(kafka_bootstrap, topics.submitted, topics.group)
        assert {0: -1, 1: -1, 2: -1} == held
        assert 10 == sum(ends.values())

        producer.hold.set()
        committed = await wait_committed_to_end(
            kafka_bootstrap, topics.submitted, topics.group
        )
    assert 10 == sum(committed.values())
    received = await read_topics(kafka_bootstrap, topics.outputs, at_least=10)
    assert {f"H-{i}".encode() for i in range(10)} == {r.key for r in received}


async def test_send_timeouts_are_retried_until_published_then_committed(
    kafka_bootstrap: str, topics: Topics, table: RuleTable
) -> None:
    claims = [(f"R-{i}".encode(), encode(claim_event(f"R-{i}"))) for i in range(5)]
    await produce(kafka_bootstrap, topics.submitted, claims)
    producer = WrappedProducer(kafka_bootstrap, send_timeouts=3)
    app = create_app(_settings(kafka_bootstrap, topics), table, producer=producer)

    with capture_logs() as logs:
        async with TestApp(app):
            await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group)

    received = await read_topics(kafka_bootstrap, topics.outputs, at_least=5)
    assert {f"R-{i}".encode() for i in range(5)} == {r.key for r in received}
    retries = [e for e in logs if e["event"] == "publish_retry"]
    assert retries
    assert {"KafkaTimeoutError"} == {e["error"] for e in retries}
    assert 5 == sum(e["event"] == "verdict" for e in logs)
