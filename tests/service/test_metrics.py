"""Metrics: what one batch published, counted once per batch, served on /metrics.

The counting is checked on real routed records (`service.routing.route` over valid, flagged
and unreadable events), the consumer lag on a fake consumer speaking aiokafka's three
methods, and the wiring by running the real app in memory and scraping its /metrics route.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import TopicPartition  # type: ignore[import-untyped]
from faststream import TestApp
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from service.app import create_app
from service.exitcodes import ExitCode
from service.handlers import ClaimsHandler
from service.lifecycle import Lifecycle
from service.metrics import ServiceMetrics, tally
from service.publishing import BatchPublisher
from service.routing import Outcome, Topics, route
from service.ruletable.compiled import RuleTable
from service.settings import Settings
from tests.service.claims import FLAGGED_CODES, claim_event, encode
from tests.service.fakes import RecordingProducer

IN = "claims.submitted"
TOPICS = Topics(
    accepted="claims.accepted",
    flagged="claims.flagged",
    dead_letter="claims.dead-letter",
    group_id="claims-validator",
)
NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)


# ------------------------------------------------------------------ helpers ----


@dataclass(frozen=True)
class Record:
    """A consumed record (the fields of aiokafka's ConsumerRecord the service reads)."""

    value: bytes | None
    key: bytes | None = None
    offset: int = 0
    topic: str = IN
    partition: int = 0
    timestamp: int = 1_772_700_000_000
    headers: Sequence[tuple[str, bytes]] = ()


def mixed_batch() -> list[Record]:
    """2 accepted, 2 flagged (2 ADDON_WITHOUT_PRIMARY findings each), 1 not JSON, 1 array."""
    values = [
        encode(claim_event("A-1")),
        encode(claim_event("F-1", FLAGGED_CODES)),
        b"{not json",
        encode(claim_event("A-2")),
        encode(claim_event("F-2", FLAGGED_CODES)),
        b"[1, 2, 3]",
    ]
    return [Record(v, offset=i) for i, v in enumerate(values)]


async def asgi_get(app: Any, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One request straight into an ASGI app: (status, headers, body)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    await app(scope, receive, send)
    [start] = [m for m in sent if m["type"] == "http.response.start"]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Exposition text -> {(sample name, labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float | None:
    return scraped.get((name, frozenset(labels.items())))


@asynccontextmanager
async def running(
    settings: Settings, table: RuleTable, producer: RecordingProducer
) -> AsyncIterator[tuple[AsgiFastStream, KafkaBroker]]:
    app = create_app(settings, table=table, producer=producer)
    broker = app.broker
    assert isinstance(broker, KafkaBroker)
    async with TestKafkaBroker(broker) as test_broker, TestApp(app):
        yield app, test_broker


# ------------------------------------------------------------------ counting ----


def test_tally_counts_one_batch_by_verdict_rule_id_and_dead_letter_reason(
    table: RuleTable,
) -> None:
    routed = [route(r, table, TOPICS, now=NOW) for r in mixed_batch()]

    counted = tally(routed)

    assert 6 == counted.records
    assert {"accepted": 2, "flagged": 2} == dict(counted.verdicts)
    assert {"ADDON_WITHOUT_PRIMARY": 4} == dict(counted.findings)
    assert {"not-json": 1, "not-an-object": 1} == dict(counted.dead_letters)


def test_a_batch_is_one_observation_and_its_counts_add_up(table: RuleTable) -> None:
    metrics = ServiceMetrics(table)
    routed = [route(r, table, TOPICS, now=NOW) for r in mixed_batch()]

    metrics.record_batch(tally(routed), seconds=0.02)
    # The second batch took three attempts; retries are counted as they happen.
    metrics.publish_retried("KafkaTimeoutError")
    metrics.publish_retried("KafkaTimeoutError")
    metrics.record_batch(tally(routed[:2]), seconds=0.3)

    get = metrics.registry.get_sample_value
    assert 3.0 == get("claims_validator_verdicts_total", {"verdict": "accepted"})
    assert 3.0 == get("claims_validator_verdicts_total", {"verdict": "flagged"})
    assert 6.0 == get(
        "claims_validator_findings_total",
        {"rule_id": "ADDON_WITHOUT_PRIMARY", "severity": "error"},
    )
    assert 1.0 == get("claims_validator_dead_letters_total", {"reason": "not-json"})
    assert 1.0 == get("claims_validator_dead_letters_total", {"reason": "not-an-object"})
    assert 2.0 == get("claims_validator_batch_duration_seconds_count")
    assert 0.32 == pytest.approx(get("claims_validator_batch_duration_seconds_sum"))
    assert 1.0 == get("claims_validator_batch_duration_seconds_bucket", {"le": "0.025"})
    assert 2.0 == get("claims_validator_batch_records_count")
    assert 8.0 == get("claims_validator_batch_records_sum")
    assert 2.0 == get("claims_validator_publish_retries_total")


def test_the_rule_table_info_metric_carries_version_and_digest(table: RuleTable) -> None:
    metrics = ServiceMetrics(table)

    labels = {"version": table.version, "digest": table.digest}
    assert 1.0 == metrics.registry.get_sample_value("claims_validator_rule_table_info", labels)


def test_every_app_has_its_own_registry(table: RuleTable) -> None:
    """Tests (and the benchmark) build many apps in one process: no duplicate-metric error,
    and one app's counts never show in another's."""
    first, second = ServiceMetrics(table), ServiceMetrics(table)
    routed = [route(r, table, TOPICS, now=NOW) for r in mixed_batch()]

    first.record_batch(tally(routed), seconds=0.01)

    labels = {"verdict": "accepted"}
    assert 2.0 == first.registry.get_sample_value("claims_validator_verdicts_total", labels)
    assert second.registry.get_sample_value("claims_validator_verdicts_total", labels) is None


class BrokenObserver:
    async def observe_batch(self, routed: Sequence[Outcome], seconds: float, attempts: int) -> None:
        raise RuntimeError("metrics backend exploded")


async def test_a_failing_observer_never_fails_a_published_batch(table: RuleTable) -> None:
    """The batch is acknowledged already: raising would make FastStream redeliver it."""
    producer = RecordingProducer()
    await producer.start()
    publisher = BatchPublisher(lambda: producer, initial_backoff_s=0.01, max_backoff_s=0.01)
    handler = ClaimsHandler(table, TOPICS, publisher, observer=BrokenObserver())

    with capture_logs() as logs:
        await handler(mixed_batch())

    assert 6 == len(producer.acked)
    assert [{"error": "RuntimeError"}] == [
        {"error": e["error"]} for e in logs if e["event"] == "observe_batch_failed"
    ]


# ------------------------------------------------------------------ consumer lag ----


@dataclass
class FakeConsumer:
    """aiokafka's AIOKafkaConsumer as far as the lag is concerned."""

    high: dict[TopicPartition, int | None]
    positions: dict[TopicPartition, int]
    broken: set[TopicPartition] = field(default_factory=set)

    def assignment(self) -> set[TopicPartition]:
        return set(self.high)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high[tp]

    async def position(self, tp: TopicPartition) -> int:
        if tp in self.broken:
            raise RuntimeError("IllegalStateError: partition is not assigned")
        return self.positions[tp]


@dataclass
class FakeSubscriber:
    consumer: FakeConsumer | None


def lag_samples(metrics: ServiceMetrics) -> dict[tuple[str, str], float]:
    return {
        (s.labels["topic"], s.labels["partition"]): s.value
        for family in metrics.registry.collect()
        if family.name == "claims_validator_consumer_lag"
        for s in family.samples
    }


P0, P1, P2 = (TopicPartition(IN, p) for p in range(3))


async def test_lag_is_high_watermark_minus_position_per_assigned_partition(
    table: RuleTable,
) -> None:
    metrics = ServiceMetrics(table)
    consumer = FakeConsumer(high={P0: 120, P1: 40, P2: None}, positions={P0: 100, P1: 40, P2: 0})
    metrics.consumer_lag.watch(FakeSubscriber(consumer))

    await metrics.consumer_lag.refresh()

    # P2 has not been fetched from yet: aiokafka does not know its high watermark.
    assert {(IN, "0"): 20.0, (IN, "1"): 0.0} == lag_samples(metrics)

    consumer.positions[P0] = 120
    consumer.high[P2] = 7
    await metrics.consumer_lag.refresh()
    assert {(IN, "0"): 0.0, (IN, "1"): 0.0, (IN, "2"): 7.0} == lag_samples(metrics)


async def test_lag_of_partitions_lost_in_a_rebalance_is_no_longer_reported(
    table: RuleTable,
) -> None:
    metrics = ServiceMetrics(table)
    consumer = FakeConsumer(high={P0: 5, P1: 9}, positions={P0: 1, P1: 2})
    subscriber = FakeSubscriber(consumer)
    metrics.consumer_lag.watch(subscriber)
    await metrics.consumer_lag.refresh()
    assert {(IN, "0"): 4.0, (IN, "1"): 7.0} == lag_samples(metrics)

    del consumer.high[P1]
    await metrics.consumer_lag.refresh()
    assert {(IN, "0"): 4.0} == lag_samples(metrics)

    subscriber.consumer = None  # the subscriber stopped
    await metrics.consumer_lag.refresh()
    assert {} == lag_samples(metrics)


async def test_lag_refresh_survives_a_rebalance_under_its_feet(table: RuleTable) -> None:
    metrics = ServiceMetrics(table)
    consumer = FakeConsumer(high={P0: 5, P1: 9}, positions={P0: 1, P1: 2})
    metrics.consumer_lag.watch(FakeSubscriber(consumer))
    await metrics.consumer_lag.refresh()

    consumer.broken = {P0, P1}
    await metrics.consumer_lag.refresh()  # must not raise

    assert {(IN, "0"): 4.0, (IN, "1"): 7.0} == lag_samples(metrics)


# ------------------------------------------------------------------ the app ----


async def test_scraped_metrics_move_with_each_published_batch(
    settings: Settings, table: RuleTable, producer: RecordingProducer
) -> None:
    """The real app in memory: publish batches, scrape /metrics through its ASGI route."""
    batch = [r.value for r in mixed_batch()]
    async with running(settings, table, producer) as (app, broker):
        status, headers, body = await asgi_get(app, "/metrics")
        assert 200 == status
        assert headers["content-type"].startswith("text/plain; version=")
        before = samples(body.decode())

        await broker.publish_batch(*batch, topic=IN)
        after_one = samples((await asgi_get(app, "/metrics"))[2].decode())
        await broker.publish_batch(*batch[:2], topic=IN)
        after_two = samples((await asgi_get(app, "/metrics"))[2].decode())

    assert value(before, "claims_validator_verdicts_total", verdict="accepted") is None
    info = {"version": table.version, "digest": table.digest}
    assert 1.0 == value(before, "claims_validator_rule_table_info", **info)

    assert 2.0 == value(after_one, "claims_validator_verdicts_total", verdict="accepted")
    assert 2.0 == value(after_one, "claims_validator_verdicts_total", verdict="flagged")
    findings = {"rule_id": "ADDON_WITHOUT_PRIMARY", "severity": "error"}
    assert 4.0 == value(after_one, "claims_validator_findings_total", **findings)
    assert 1.0 == value(after_one, "claims_validator_dead_letters_total", reason="not-json")
    assert 1.0 == value(after_one, "claims_validator_dead_letters_total", reason="not-an-object")
    assert 1.0 == value(after_one, "claims_validator_batch_duration_seconds_count")
    assert 6.0 == value(after_one, "claims_validator_batch_records_sum")

    assert 3.0 == value(after_two, "claims_validator_verdicts_total", verdict="accepted")
    assert 3.0 == value(after_two, "claims_validator_verdicts_total", verdict="flagged")
    assert 6.0 == value(after_two, "claims_validator_findings_total", **findings)
    assert 2.0 == value(after_two, "claims_validator_batch_duration_seconds_count")

    # FastStream's own middleware counts records of the subscriber, on the same registry.
    received = {"app_name": "claims-validator", "broker": "kafka", "handler": IN}
    assert 8.0 == value(after_two, "faststream_received_messages_total", **received)
    assert 8 == len(producer.acked)


async def test_a_stopping_service_hands_batches_back_unpublished_without_spinning(
    table: RuleTable,
) -> None:
    """Once the service decided to stop, a batch is not judged: it is handed back uncommitted,
    after a pause, so the consumer's refetch of a nacked batch cannot spin until it stops."""
    producer = RecordingProducer()
    await producer.start()
    publisher = BatchPublisher(lambda: producer, initial_backoff_s=0.01, max_backoff_s=0.01)
    lifecycle = Lifecycle()
    lifecycle.fail(ExitCode.PUBLISH_FAILED, "publishing gave up")
    handler = ClaimsHandler(table, TOPICS, publisher, lifecycle=lifecycle, stopping_pause_s=0.2)

    started = time.perf_counter()
    with pytest.raises(RuntimeError, match="stopping"):
        await handler(mixed_batch())

    assert time.perf_counter() - started >= 0.2
    assert [] == producer.acked
    assert not lifecycle.batch_in_flight
