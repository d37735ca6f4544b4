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
from service.producers import BatchingProducer
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
    the first sends raise KafkaTimeoutError. It only offers `send()`, so the service sends
    one record at a time through it."""

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
        return asyncio.ensure_future(self._acknowledged(ack))

    async def _acknowledged(self, ack: Any) -> Any:
        result = await ack  # the broker has the record
        await self.hold.wait()
        return result


class HeldBatchingProducer(WrappedProducer):
    """The service's real path: aiokafka's batch API (`create_batch` / `send_batch`), with the
    acknowledgement of each record batch held back until `hold` is set. The broker has written
    the batch by then; only the service does not know it yet."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap)
        self.batches = 0
        self.records = 0

    def create_batch(self) -> Any:
        return self._real.create_batch()

    async def partitions_for(self, topic: str) -> Any:
        return await self._real.partitions_for(topic)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        ack = await self._real.send_batch(batch, topic, partition=partition)
        self.batches += 1
        self.records += batch.record_count()
        return asyncio.ensure_future(self._acknowledged(ack))


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


async def test_nothing_is_committed_while_the_real_producers_batch_acknowledgements_are_held(
    kafka_bootstrap: str, topics: Topics, table: RuleTable
) -> None:
    """The service's own batching path against the real broker: its verdict batches are on
    the broker, but while their acknowledgements are held back the group commits nothing;
    once they are released, the offsets are committed to the end. Auto-commit is off on the
    running consumer itself (no waiting for an auto-commit interval to pass)."""
    total = 600
    claims = [(f"H-{i}".encode(), encode(claim_event(f"H-{i}"))) for i in range(total)]
    await produce(kafka_bootstrap, topics.submitted, claims)
    producer = HeldBatchingProducer(kafka_bootstrap)
    producer.hold.clear()
    app = create_app(_settings(kafka_bootstrap, topics), table, producer=producer)
    assert isinstance(producer, BatchingProducer)

    async with TestApp(app):
        [subscriber] = app.broker.subscribers
        consumer = subscriber.consumer
        assert consumer is not None
        assert consumer._enable_auto_commit is False
        assert consumer._coordinator._enable_auto_commit is False

        # The first consumed batch's verdicts are written (read back from the broker), none
        # acknowledged to the app; it cannot take the next batch before this one is done.
        await _until(lambda: producer.batches > 1, "verdict batches sent")
        handed = producer.records
        on_broker = await read_topics(kafka_bootstrap, topics.outputs, at_least=handed)
        assert len(on_broker) >= handed > 0
        assert 0 == producer.sends  # all of it went through the batch API
        held, ends = await committed_and_end(kafka_bootstrap, topics.submitted, topics.group)
        assert {0: -1, 1: -1, 2: -1} == held
        assert total == sum(ends.values())

        producer.hold.set()
        committed = await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group)
    assert total == sum(committed.values())
    received = await read_topics(kafka_bootstrap, topics.outputs, at_least=total)
    assert {f"H-{i}".encode() for i in range(total)} == {r.key for r in received}
    assert total == len(received)  # released, not resent


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
