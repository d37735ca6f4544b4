"""Publish retry: failed sends are retried with exponential backoff and never skipped.

The failures are injected with fake producers passed to `create_app(producer=...)` or to
`BatchPublisher`, raising the errors aiokafka raises (KafkaTimeoutError from `send()` while
metadata is unavailable, an acknowledgement future failing when a batch expires or the leader
moves, MessageSizeTooLargeError). Against a real broker, `tests/integration` covers the other
half: offsets are not committed while acknowledgements are outstanding.
"""

from __future__ import annotations

from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
)
from faststream.kafka import KafkaPublishMessage
from structlog.testing import capture_logs

from service.publishing import BatchPublisher
from service.routing import OutRecord
from tests.service.claims import claim_event, encode
from tests.service.conftest import RunApp
from tests.service.fakes import FlakyProducer, Sent

IN = "claims.submitted"


def _first_sends_fail(count: int) -> FlakyProducer:
    return FlakyProducer(
        lambda n, _: KafkaTimeoutError() if n <= count else None, raise_on_send=True
    )


async def test_send_timeouts_are_retried_with_doubling_capped_backoff_until_acked(
    run_app: RunApp,
) -> None:
    """Four failing attempts, then success: every verdict is published, none skipped."""
    producer = _first_sends_fail(4)
    with capture_logs() as logs:
        async with run_app(producer=producer) as broker:
            await broker.publish(encode(claim_event("CLM-1")), IN, key=b"CLM-1")

    assert [b"CLM-1"] == [s.key for s in producer.acked]
    retries = [e for e in logs if e["event"] == "publish_retry"]
    assert [1, 2, 3, 4] == [e["attempt"] for e in retries]
    # settings fixture: retry_initial_s=0.01, retry_max_s=0.04
    assert [0.01, 0.02, 0.04, 0.04] == [e["backoff_s"] for e in retries]
    assert {"KafkaTimeoutError"} == {e["error"] for e in retries}
    assert {"warning"} == {e["log_level"] for e in retries}
    # The verdict line is written once, after the acknowledgement.
    assert 1 == sum(e["event"] == "verdict" for e in logs)


async def test_failed_acknowledgements_resend_only_what_failed_and_later_same_key_records(
    run_app: RunApp,
) -> None:
    """A batch of three where the ack of the first fails once: it is sent again, and so is the
    later record with the same key (keeps per-key order); the other record is not resent."""
    failed_once: set[bytes] = set()

    def fail_first_ack_of_a1(_: int, sent: Sent) -> BaseException | None:
        if sent.key == b"A" and b"A-1" not in failed_once:
            failed_once.add(b"A-1")
            error: BaseException = NotLeaderForPartitionError()
            return error
        return None

    producer = FlakyProducer(fail_first_ack_of_a1, raise_on_send=False)
    first = claim_event("A", event_id="A-1")
    second = claim_event("A", event_id="A-2")
    async with run_app(producer=producer) as broker:
        await broker.publish_batch(
            KafkaPublishMessage(encode(first), key=b"A"),
            KafkaPublishMessage(encode(claim_event("B")), key=b"B"),
            KafkaPublishMessage(encode(second), key=b"A"),
            topic=IN,
        )

    assert 5 == producer.sends  # 3 + (A-1 again, A-2 again)
    assert ["evt-B", "A-2", "A-1", "A-2"] == [s.json()["causation_id"] for s in producer.acked]
    causes_of_a = [s.json()["causation_id"] for s in producer.acked if s.key == b"A"]
    assert ["A-2", "A-1", "A-2"] == causes_of_a
    assert ["A-1", "A-2"] == causes_of_a[-2:]  # the newest verdict of claim A is acked last


async def test_backoff_doubles_from_initial_up_to_max() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    producer = _first_sends_fail(6)
    publisher = BatchPublisher(
        lambda: producer, initial_backoff_s=0.5, max_backoff_s=3.0, sleep=sleep
    )
    attempts = (await publisher.publish([OutRecord("t", b"k", b"v", ())])).attempts

    assert 7 == attempts
    assert [0.5, 1.0, 2.0, 3.0, 3.0, 3.0] == slept
    assert [Sent("t", b"k", b"v", ())] == producer.acked


async def test_dead_letter_too_large_for_the_broker_is_sent_without_its_value(
    run_app: RunApp,
) -> None:
    """An unreadable event near the size limit plus x-dlq headers would be refused forever;
    the service sends the headers and an empty value instead, and goes on."""
    huge = b"<" + b"x" * 2000

    def refuse_large(_: int, sent: Sent) -> BaseException | None:
        return MessageSizeTooLargeError() if len(sent.value or b"") > 1000 else None

    producer = FlakyProducer(refuse_large, raise_on_send=True)
    async with run_app(producer=producer) as broker:
        await broker.publish(huge, IN, key=b"K")
        await broker.publish(encode(claim_event("CLM-2")), IN, key=b"CLM-2")

    dead, verdict = producer.acked
    assert ("claims.dead-letter", b"K", b"") == (dead.topic, dead.key, dead.value)
    assert b"2001 bytes, over the size limit" == dead.header("x-dlq-value-dropped")
    assert b"not-json" == dead.header("x-dlq-reason")
    assert ("claims.accepted", b"CLM-2") == (verdict.topic, verdict.key)
