"""Prometheus metrics of the service, counted once per batch and never once per record.

The hot path counts nothing: `tally()` walks a batch's outcomes once into a few
`collections.Counter`s and `ServiceMetrics.record_batch()` calls `inc()` once per label value
per batch. Every app gets its own `CollectorRegistry` (tests run many apps in one process), which
FastStream's `KafkaPrometheusMiddleware` shares, so `/metrics` serves both.

Metrics (prometheus_client adds `_total` to counters):

* `claims_validator_verdicts_total{verdict}`: published verdicts, accepted / flagged;
* `claims_validator_findings_total{rule_id, severity}`: findings in published verdicts;
* `claims_validator_dead_letters_total{reason}`: records sent to the dead-letter topic;
* `claims_validator_batch_duration_seconds`: per batch, from the handler receiving it until the
  broker acknowledged every record it produced (judging + publishing; the commit follows);
* `claims_validator_batch_records`: records per batch (its `_sum` counts handled records, so
  the mean time per record is `rate(..._duration_seconds_sum) / rate(..._records_sum)`);
* `claims_validator_publish_retries_total`: publish attempts that had to be repeated, counted as
  they happen (not when the batch finally succeeds);
* `claims_validator_producer_rebuilds_total`: producers replaced after their state broke;
* `claims_validator_stalled`: 1 while judging is stalled (publishing failing past its bound, a
  stopped partition, lag without progress), read on every scrape;
* `claims_validator_partitions_stopped`, `claims_validator_consumer_in_group`;
* `claims_validator_rule_table_info{version, digest}`: the rule table being applied;
* `claims_validator_consumer_lag{topic, partition}`: per assigned partition, the partition's
  high watermark minus the consumer's position (records not yet handed to the service),
  refreshed after every batch and on every scrape;
* `claims_validator_http_requests_total{route, status}`: requests to the HTTP API and the
  what-if page (`service.web`), by route template and status code.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from service.routing import Outcome
from service.ruletable.compiled import RuleTable

__all__ = [
    "APP_NAME",
    "PREFIX",
    "BatchTally",
    "ConsumerLag",
    "LagSource",
    "ServiceMetrics",
    "SubscriberLike",
    "tally",
]

PREFIX: Final = "claims_validator"
APP_NAME: Final = "claims-validator"
"""The `app_name` label of FastStream's own `faststream_*` metrics."""

DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RECORDS_BUCKETS: Final = (1, 10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000)
LAG_REFRESH_TIMEOUT_S: Final = 0.5
"""Bound on reading the positions: a partition being reset would otherwise make
`position()` wait for up to the request timeout."""


@dataclass(slots=True)
class BatchTally:
    """What one batch produced, by label value."""

    records: int = 0
    verdicts: collections.Counter[str] = field(default_factory=collections.Counter)
    findings: collections.Counter[str] = field(default_factory=collections.Counter)
    """Findings by rule id."""
    dead_letters: collections.Counter[str] = field(default_factory=collections.Counter)
    """Dead-lettered records by x-dlq-reason."""


def tally(outcomes: Sequence[Outcome]) -> BatchTally:
    """Count one batch's outcomes: one pass appending to lists, then C-speed Counters."""
    verdicts: list[str] = []
    rule_ids: list[str] = []
    reasons: list[str] = []
    add_verdict, add_rule_ids, add_reason = verdicts.append, rule_ids.extend, reasons.append
    for o in outcomes:
        if o.kind == "verdict":
            add_verdict(o.verdict or "")
            add_rule_ids(o.rule_ids)
        else:
            add_reason(o.reason or "")
    return BatchTally(
        records=len(outcomes),
        verdicts=collections.Counter(verdicts),
        findings=collections.Counter(rule_ids),
        dead_letters=collections.Counter(reasons),
    )


class LagSource(Protocol):
    """The part of `aiokafka.AIOKafkaConsumer` the lag is read from (no request is sent)."""

    def assignment(self) -> Iterable[Any]: ...

    def highwater(self, partition: Any) -> int | None: ...

    async def position(self, partition: Any) -> int: ...


class SubscriberLike(Protocol):
    """FastStream's Kafka subscriber: `consumer` is its aiokafka consumer while it runs."""

    @property
    def consumer(self) -> Any: ...


class ConsumerLag:
    """Keeps `claims_validator_consumer_lag` equal to high watermark - position per partition.

    A partition is exported once the consumer has fetched from it (aiokafka knows its high
    watermark only from fetch responses); a partition that is no longer assigned (rebalance)
    is removed, so a replica never reports lag for partitions another replica now owns.
    """

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._source: SubscriberLike | None = None
        self._exported: set[tuple[str, str]] = set()
        self.total = 0
        """Lag summed over the partitions read at the last refresh."""

    def watch(self, subscriber: SubscriberLike) -> None:
        self._source = subscriber

    async def refresh(self) -> None:
        consumer: LagSource | None = self._source.consumer if self._source else None
        if consumer is None:
            self._forget(set())
            return
        seen: set[tuple[str, str]] = set()
        total = 0
        try:
            async with asyncio.timeout(LAG_REFRESH_TIMEOUT_S):
                for tp in list(consumer.assignment()):
                    high = consumer.highwater(tp)
                    if high is None:
                        continue
                    position = await consumer.position(tp)
                    labels = (tp.topic, str(tp.partition))
                    lag = max(high - position, 0)
                    self._gauge.labels(*labels).set(lag)
                    total += lag
                    seen.add(labels)
            self.total = total
        except Exception:  # a rebalance under our feet: keep what was read, retry next time
            seen |= self._exported
        self._forget(seen)

    def _forget(self, keep: set[tuple[str, str]]) -> None:
        for labels in self._exported - keep:
            self._gauge.remove(*labels)
        self._exported = keep


class ServiceMetrics:
    """The service's collectors in one registry, and FastStream's middleware writing to it."""

    def __init__(self, table: RuleTable, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self._severity: Mapping[str, str] = {
            rule_id: info.severity for rule_id, info in table.rules.items()
        }
        self.verdicts = Counter(
            f"{PREFIX}_verdicts", "Published verdicts, by verdict.", ["verdict"], registry=reg
        )
        self.findings = Counter(
            f"{PREFIX}_findings",
            "Findings in published verdicts, by rule id and its severity.",
            ["rule_id", "severity"],
            registry=reg,
        )
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters",
            "Records published to the dead-letter topic, by x-dlq-reason.",
            ["reason"],
            registry=reg,
        )
        self.batch_duration = Histogram(
            f"{PREFIX}_batch_duration_seconds",
            "Per consumed batch: judging and publishing until every output record is "
            "acknowledged by the broker.",
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.batch_records = Histogram(
            f"{PREFIX}_batch_records",
            "Records per consumed batch (_sum: records handled).",
            buckets=RECORDS_BUCKETS,
            registry=reg,
        )
        self.publish_retries = Counter(
            f"{PREFIX}_publish_retries",
            "Publish attempts of a batch that had to be repeated (broker errors, timeouts, "
            "refused records), counted as they happen.",
            registry=reg,
        )
        self.producer_rebuilds = Counter(
            f"{PREFIX}_producer_rebuilds",
            "Verdict producers replaced because their own state broke (out-of-order sequence, "
            "unknown producer id, fenced epoch).",
            registry=reg,
        )
        self.stalled = Gauge(
            f"{PREFIX}_stalled",
            "1 while judging is stalled: publishing failing past its bound, a partition stopped "
            "at an unreadable record, or lag with no batch completed; else 0.",
            registry=reg,
        )
        self.partitions_stopped = Gauge(
            f"{PREFIX}_partitions_stopped",
            "Input partitions paused at a record the client cannot read (an operator must act).",
            registry=reg,
        )
        self.in_group = Gauge(
            f"{PREFIX}_consumer_in_group",
            "1 while the consumer is a member of its group with partitions assigned; else 0.",
            registry=reg,
        )
        self.rule_table = Info(
            f"{PREFIX}_rule_table", "The rule table the service applies.", registry=reg
        )
        self.rule_table.info({"version": table.version, "digest": table.digest})
        self.consumer_lag_gauge = Gauge(
            f"{PREFIX}_consumer_lag",
            "Per assigned input partition: high watermark minus the consumer's position.",
            ["topic", "partition"],
            registry=reg,
        )
        self.consumer_lag = ConsumerLag(self.consumer_lag_gauge)
        self.http_requests = Counter(
            f"{PREFIX}_http_requests",
            "Requests to the HTTP API and the what-if page, by route and status code.",
            ["route", "status"],
            registry=reg,
        )

    def middleware(self) -> KafkaPrometheusMiddleware:
        """FastStream's broker middleware (`faststream_received_*` per batch) on our registry."""
        return KafkaPrometheusMiddleware(registry=self.registry, app_name=APP_NAME)

    async def observe_batch(
        self, outcomes: Sequence[Outcome], seconds: float, attempts: int
    ) -> None:
        """After a batch was published: count it, then refresh the consumer lag (retries were
        counted as they happened)."""
        self.record_batch(tally(outcomes), seconds)
        await self.consumer_lag.refresh()

    def http_request(self, route: str, status: int) -> None:
        """One answered API or page request; `route` is a route template, never a raw path."""
        self.http_requests.labels(route, str(status)).inc()

    def publish_retried(self, error: str) -> None:
        self.publish_retries.inc()

    def producer_rebuilt(self) -> None:
        self.producer_rebuilds.inc()

    def record_batch(self, batch: BatchTally, seconds: float) -> None:
        """One `inc()` per label value of the batch."""
        for verdict, count in batch.verdicts.items():
            self.verdicts.labels(verdict).inc(count)
        severity = self._severity
        for rule_id, count in batch.findings.items():
            self.findings.labels(rule_id, severity.get(rule_id, "unknown")).inc(count)
        for reason, count in batch.dead_letters.items():
            self.dead_letters.labels(reason).inc(count)
        self.batch_duration.observe(seconds)
        self.batch_records.observe(batch.records)
