"""The service end to end in memory: claim events in, verdicts and dead letters out.

FastStream's TestKafkaBroker delivers the input; the app publishes through a recording fake
producer, so each test asserts exactly what the service hands to Kafka: topic, key, headers and
the verdict document.
"""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from faststream.kafka import KafkaPublishMessage

from service.ruletable.compiled import RuleTable
from tests.service.claims import FLAGGED_CODES, claim_event, encode
from tests.service.conftest import RunApp
from tests.service.fakes import RecordingProducer

IN = "claims.submitted"
ACCEPTED = "claims.accepted"
FLAGGED = "claims.flagged"
DLQ = "claims.dead-letter"


async def test_accepted_claim_is_published_to_the_accepted_topic_keyed_by_claim_id(
    run_app: RunApp, producer: RecordingProducer, table: RuleTable
) -> None:
    """A clean 64490 + 64491 + 99213-25 claim gets one claim.accepted verdict, key = claim id."""
    async with run_app() as broker:
        await broker.publish(encode(claim_event("CLM-1")), IN, key=b"CLM-1")

    [sent] = producer.acked
    assert (ACCEPTED, b"CLM-1") == (sent.topic, sent.key)
    assert b"application/json" == sent.header("content-type")
    verdict = sent.json()
    assert {
        "event_type": "claim.accepted",
        "schema_version": 1,
        "causation_id": "evt-CLM-1",
        "claim_id": "CLM-1",
        "verdict": "accepted",
        "findings": [],
        "rule_table_version": table.version,
    } == {k: v for k, v in verdict.items() if k not in ("event_id", "occurred_at")}


async def test_flagged_claim_is_published_to_the_flagged_topic_with_its_findings(
    run_app: RunApp, producer: RecordingProducer
) -> None:
    """Add-ons 64491 + 64492 without their primary 64490: one finding per add-on line."""
    async with run_app() as broker:
        await broker.publish(encode(claim_event("CLM-2", FLAGGED_CODES)), IN, key=b"CLM-2")

    [sent] = producer.acked
    assert (FLAGGED, b"CLM-2") == (sent.topic, sent.key)
    verdict = sent.json()
    assert ("claim.flagged", "flagged") == (verdict["event_type"], verdict["verdict"])
    assert [("ADDON_WITHOUT_PRIMARY", 1, "64491"), ("ADDON_WITHOUT_PRIMARY", 2, "64492")] == [
        (f["rule_id"], f["line_number"], f["procedure_code"]) for f in verdict["findings"]
    ]
    assert all(f["severity"] == "error" and "F-AOC" in f["reference"] for f in verdict["findings"])


async def test_redelivered_event_gets_a_verdict_with_the_same_event_id(
    run_app: RunApp, producer: RecordingProducer
) -> None:
    """At-least-once: a redelivery republishes, and the verdict id marks it as a duplicate."""
    async with run_app() as broker:
        await broker.publish(encode(claim_event("CLM-3")), IN, key=b"CLM-3")
        await broker.publish(encode(claim_event("CLM-3")), IN, key=b"CLM-3")

    first, second = (s.json() for s in producer.acked)
    assert first["event_id"] == second["event_id"]


async def test_malformed_claim_that_names_a_claim_id_is_flagged_claim_malformed(
    run_app: RunApp, producer: RecordingProducer
) -> None:
    """Schema problems become CLAIM_MALFORMED findings that name the field, not its value."""
    event = claim_event("CLM-4")
    event["claim"]["service_lines"][1]["units"] = "two"
    del event["claim"]["service_lines"][0]["service_date"]
    async with run_app() as broker:
        await broker.publish(encode(event), IN, key=b"CLM-4")

    [sent] = producer.acked
    assert (FLAGGED, b"CLM-4") == (sent.topic, sent.key)
    verdict = sent.json()
    assert ("flagged", "evt-CLM-4") == (verdict["verdict"], verdict["causation_id"])
    assert {"CLAIM_MALFORMED"} == {f["rule_id"] for f in verdict["findings"]}
    messages = [f["message"] for f in verdict["findings"]]
    assert any(m.startswith("claim.service_lines[0].service_date:") for m in messages)
    assert any(m.startswith("claim.service_lines[1].units:") for m in messages)
    assert not any("two" in m.split(":", 1)[1] for m in messages)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b'{"claim": {"patient": {"member_id": "PHI-MEMBER-XYZ"', "not-json"),
        (b'["claim.submitted"]', "not-an-object"),
        (orjson.dumps({"event_type": "claim.submitted", "claim": {"payer_id": "X"}}),
         "no-claim-id"),
    ],
    ids=["truncated-json", "json-array", "no-claim-id"],
)
async def test_unreadable_event_is_dead_lettered_with_original_bytes_key_and_headers(
    run_app: RunApp, producer: RecordingProducer, value: bytes, reason: str
) -> None:
    """The DLQ record is the original plus x-dlq-* headers saying why and where from."""
    async with run_app() as broker:
        await broker.publish(value, IN, key=b"k-9", headers={"trace-id": "t-123"})

    [sent] = producer.acked
    assert (DLQ, b"k-9", value) == (sent.topic, sent.key, sent.value)
    assert b"t-123" == sent.header("trace-id")
    assert reason.encode() == sent.header("x-dlq-reason")
    assert sent.header("x-dlq-detail")
    assert b"PHI-MEMBER-XYZ" not in sent.header("x-dlq-detail")
    assert (b"claims.submitted", b"0", b"0", b"claims-validator") == (
        sent.header("x-dlq-topic"),
        sent.header("x-dlq-partition"),
        sent.header("x-dlq-offset"),
        sent.header("x-dlq-group"),
    )


async def test_dead_lettering_a_dead_letter_replaces_its_old_dlq_headers(
    run_app: RunApp, producer: RecordingProducer
) -> None:
    """An event re-driven from the DLQ carries one, current, set of x-dlq-* headers."""
    async with run_app() as broker:
        await broker.publish(b"nope", IN, headers={"x-dlq-reason": "old", "x-dlq-offset": "77"})

    [sent] = producer.acked
    assert (b"not-json", b"0") == (sent.header("x-dlq-reason"), sent.header("x-dlq-offset"))


async def test_engine_failure_dead_letters_that_record_as_internal_error_and_goes_on(
    run_app: RunApp, producer: RecordingProducer, table: RuleTable
) -> None:
    """A table missing its rule catalogue makes finding() raise for a flagged claim only."""
    broken = dataclasses.replace(table, rules={})
    async with run_app(table=broken) as broker:
        await broker.publish_batch(
            KafkaPublishMessage(encode(claim_event("CLM-5", FLAGGED_CODES)), key=b"CLM-5"),
            KafkaPublishMessage(encode(claim_event("CLM-6")), key=b"CLM-6"),
            topic=IN,
        )

    dead, verdict = producer.acked
    assert (DLQ, b"CLM-5", b"internal-error") == (dead.topic, dead.key, dead.header("x-dlq-reason"))
    assert dead.header("x-dlq-detail").startswith(b"KeyError at service/")
    assert (ACCEPTED, b"CLM-6") == (verdict.topic, verdict.key)


async def test_a_batch_yields_one_output_per_record_in_input_order(
    run_app: RunApp, producer: RecordingProducer
) -> None:
    """Mixed batch: accepted, flagged, unreadable, malformed, accepted."""
    malformed = claim_event("CLM-D")
    malformed["claim"]["service_lines"] = []
    values = [
        encode(claim_event("CLM-A")),
        encode(claim_event("CLM-B", FLAGGED_CODES)),
        b"\x00\x01binary",
        encode(malformed),
        encode(claim_event("CLM-E")),
    ]
    async with run_app() as broker:
        await broker.publish_batch(*values, topic=IN)

    assert [ACCEPTED, FLAGGED, DLQ, FLAGGED, ACCEPTED] == [s.topic for s in producer.acked]
    assert [b"CLM-A", b"CLM-B", b"CLM-D", b"CLM-E"] == [
        s.key for s in producer.acked if s.topic != DLQ
    ]


async def test_producer_is_started_before_and_stopped_after_the_app(
    run_app: RunApp, producer: RecordingProducer
) -> None:
    async with run_app():
        assert (True, False) == (producer.started, producer.stopped)
    assert producer.stopped


async def test_the_limit_settings_reach_the_kafka_path(
    run_app: RunApp, producer: RecordingProducer
) -> None:
    """CLAIMS_LIMITS__*: a claim over the configured line limit is flagged CLAIM_MALFORMED naming
    the limit; an event over the byte limit is a dead letter, unparsed."""
    from service.settings import LimitSettings, PublishSettings, Settings

    settings = Settings(
        publish=PublishSettings(retry_initial_s=0.01, retry_max_s=0.04),
        limits=LimitSettings(max_service_lines=2, max_event_bytes=4_000),
    )
    too_long = encode(claim_event("CLM-L", ("64490", "64491", "99213")))
    async with run_app(settings=settings) as broker:
        await broker.publish(too_long, IN, key=b"CLM-L")
        await broker.publish(b"{" + b" " * 5_000 + b"}", IN, key=b"BIG")

    verdict, dead = producer.acked
    findings = verdict.json()["findings"]
    assert (FLAGGED, ["CLAIM_MALFORMED"]) == (verdict.topic, [f["rule_id"] for f in findings])
    assert "2" in findings[0]["message"]
    assert (DLQ, b"too-large") == (dead.topic, dead.header("x-dlq-reason"))
