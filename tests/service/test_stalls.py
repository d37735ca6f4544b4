"""Nothing stalls silently: broken producers are replaced, refused records fall back, publishing
that cannot succeed and a stream of internal errors stop the service with their exit codes.

All against FastStream's in-memory broker with fake producers (no patching of aiokafka); the
real-broker counterparts are in tests/integration and tests/faults.
"""

from __future__ import annotations

import dataclasses

import pytest
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    UnknownTopicOrPartitionError,
)
from faststream import TestApp
from faststream.kafka import KafkaBroker, KafkaPublishMessage, TestKafkaBroker
from structlog.testing import capture_logs

from service.app import LIFECYCLE_KEY, create_app
from service.exitcodes import ExitCode
from service.lifecycle import Lifecycle
from service.publishing import BatchPublisher, PublishFailed, PublishStalled
from service.routing import OutRecord
from service.ruletable.compiled import RuleTable
from service.settings import BrakeSettings, PublishSettings, Settings
from tests.service.claims import FLAGGED_CODES, claim_event, encode
from tests.service.conftest import RunApp
from tests.service.fakes import FlakyProducer, RecordingProducer, Sent

IN = "claims.submitted"
DLQ = "claims.dead-letter"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_broken_producer_state_is_never_retried_on_the_same_producer(
    run_app: RunApp,
) -> None:
    """OutOfOrderSequenceNumber (the wedge after a broker restart): the producer is replaced and
    the verdict resent on the new one; the retry and the rebuild are counted as they happen."""
    built: list[FlakyProducer] = []

    def factory() -> FlakyProducer:
        broken = not built  # the first producer fails every send; its successor works
        producer = FlakyProducer(
            lambda *_: OutOfOrderSequenceNumber() if broken else None, raise_on_send=False
        )
        built.append(producer)
        return producer

    with capture_logs() as logs:
        async with run_app(producer=factory) as broker:  # type: ignore[arg-type]
            await broker.publish(encode(claim_event("CLM-1")), IN, key=b"CLM-1")

    assert 2 == len(built)
    assert built[0].stopped
    assert not built[0].acked
    assert [b"CLM-1"] == [s.key for s in built[1].acked]
    assert [("OutOfOrderSequenceNumber", 1)] == [
        (e["error"], e["rebuild"]) for e in logs if e["event"] == "producer_rebuild"
    ]


async def test_a_producer_that_stays_broken_stops_the_service_with_exit_code_5(
    settings: Settings, table: RuleTable
) -> None:
    def factory() -> FlakyProducer:
        return FlakyProducer(lambda *_: OutOfOrderSequenceNumber(), raise_on_send=False)

    publisher = BatchPublisher(
        factory_slot(factory), initial_backoff_s=0.0, max_backoff_s=0.0, max_rebuilds=2,
        rebuild=_noop,
    )
    with pytest.raises(PublishFailed, match="stays broken"):
        await publisher.publish([OutRecord("t", b"k", b"v", ())])

    lifecycle = Lifecycle()
    app = create_app(settings, table, producer=factory, lifecycle=lifecycle)
    assert lifecycle is app.context.get(LIFECYCLE_KEY)
    assert isinstance(app.broker, KafkaBroker)
    async with TestKafkaBroker(app.broker) as broker, TestApp(app):
        with pytest.raises(PublishFailed):
            await broker.publish(encode(claim_event("CLM-1")), IN, key=b"CLM-1")
    assert ExitCode.PUBLISH_FAILED == lifecycle.exit_code
    assert lifecycle.stop_requested.is_set()


def factory_slot(factory: object) -> object:
    producer = None

    def current() -> object:
        nonlocal producer
        if producer is None:
            producer = factory()  # type: ignore[operator]
        return producer

    return current


async def _noop() -> None:
    return None


async def test_a_batch_past_its_deadline_is_handed_back_and_publishing_health_says_since_when(
) -> None:
    clock = Clock()

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    producer = FlakyProducer(lambda *_: UnknownTopicOrPartitionError(), raise_on_send=True)
    publisher = BatchPublisher(
        lambda: producer,
        initial_backoff_s=1.0,
        max_backoff_s=4.0,
        sleep=sleep,
        deadline_s=10.0,
        give_up_after_s=25.0,
        clock=clock,
    )
    with pytest.raises(PublishStalled, match="within 10 s"):
        await publisher.publish([OutRecord("t", b"k", b"v", ())])
    assert 0.0 == publisher.health.failing_since
    # The batch is consumed again and fails again: past the give-up bound the service exits.
    raised: list[str] = []
    for _ in range(5):
        try:
            await publisher.publish([OutRecord("t", b"k", b"v", ())])
        except (PublishStalled, PublishFailed) as exc:
            raised.append(str(exc))
            if isinstance(exc, PublishFailed):
                break
    assert 3 == len(raised)
    assert [True, True, False] == ["within 10 s" in text for text in raised]
    assert "give-up bound 25 s" in raised[-1]
    assert clock.now >= 25.0
    assert not producer.acked


async def test_one_success_clears_the_failing_state() -> None:
    producer = FlakyProducer(
        lambda n, _: KafkaTimeoutError() if n == 1 else None, raise_on_send=True
    )
    publisher = BatchPublisher(lambda: producer, initial_backoff_s=0.0, max_backoff_s=0.0)
    published = await publisher.publish([OutRecord("t", b"k", b"v", ())])
    assert (2, None) == (published.attempts, publisher.health.failing_since)


async def test_a_verdict_over_the_size_limit_falls_back_to_a_compact_verdict_then_a_dead_letter(
    run_app: RunApp,
) -> None:
    """Many findings of few rules: the compact verdict keeps one finding per rule id, the same
    verdict and event id. If even that is refused, the input is dead-lettered, never retried
    forever."""
    event = claim_event("CLM-BIG", FLAGGED_CODES * 8)
    full_size: list[int] = []

    def refuse_over(limit: int) -> FlakyProducer:
        def fail(_: int, sent: Sent) -> BaseException | None:
            if sent.topic != DLQ:
                full_size.append(len(sent.value or b""))
            return MessageSizeTooLargeError() if len(sent.value or b"") > limit else None

        return FlakyProducer(fail, raise_on_send=True)

    producer = refuse_over(2_500)
    async with run_app(producer=producer) as broker:
        await broker.publish(encode(event), IN, key=b"CLM-BIG")
    [verdict] = producer.acked
    body = verdict.json()
    rule_ids = [f["rule_id"] for f in body["findings"]]
    assert len(rule_ids) == len(set(rule_ids))
    assert ("flagged", b"CLM-BIG") == (body["verdict"], verdict.key)
    assert full_size[0] > 2_500 >= len(verdict.value or b"")

    tiny = refuse_over(100)
    with capture_logs() as logs:
        async with run_app(producer=tiny) as broker:
            await broker.publish(encode(event), IN, key=b"CLM-BIG")
    [dead] = tiny.acked
    assert (DLQ, b"verdict-too-large", b"") == (
        dead.topic,
        dead.header("x-dlq-reason"),
        dead.value,
    )
    [line] = [e for e in logs if e["event"] == "dead_lettered"]
    assert ("verdict-too-large", True) == (line["reason"], line["value_dropped"])


async def test_internal_errors_in_most_records_stop_the_service_with_exit_code_6(
    settings: Settings, table: RuleTable
) -> None:
    """A table missing its rule catalogue makes every flagged claim an internal error: once
    more than half of 20 records failed, the batch is not published and the service stops."""
    broken = dataclasses.replace(table, rules={})
    settings = settings.model_copy(
        update={"brake": BrakeSettings(internal_error_max_share=0.5, internal_error_min_records=20)}
    )
    producer = RecordingProducer()
    lifecycle = Lifecycle()
    app = create_app(settings, broken, producer=producer, lifecycle=lifecycle)
    assert isinstance(app.broker, KafkaBroker)
    messages = [
        KafkaPublishMessage(encode(claim_event(f"CLM-{i}", FLAGGED_CODES)), key=b"k")
        for i in range(30)
    ]
    async with TestKafkaBroker(app.broker) as broker, TestApp(app):
        with pytest.raises(Exception, match="internal error"):
            await broker.publish_batch(*messages, topic=IN)
    assert ExitCode.INTERNAL_ERRORS == lifecycle.exit_code
    # Published before the brake tripped at the 20th record; never the whole stream.
    assert len(producer.acked) < 20


async def test_a_few_internal_errors_are_dead_lettered_without_tripping_the_brake(
    run_app: RunApp, producer: RecordingProducer, table: RuleTable
) -> None:
    broken = dataclasses.replace(table, rules={})
    values = [encode(claim_event("CLM-X", FLAGGED_CODES))] + [
        encode(claim_event(f"CLM-{i}")) for i in range(30)
    ]
    async with run_app(table=broken) as broker:
        await broker.publish_batch(*values, topic=IN)
    assert 31 == len(producer.acked)
    assert 1 == sum(s.topic == DLQ for s in producer.acked)


def test_publish_settings_keep_a_batch_deadline_inside_the_poll_interval() -> None:
    with pytest.raises(ValueError, match="batch_deadline_s"):
        Settings(publish=PublishSettings(batch_deadline_s=200.0))
