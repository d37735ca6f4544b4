"""The Grafana dashboard: every query asks for series the service really exports.

Each panel's PromQL is parsed (promql-parser) and its metric names and labels are compared with
what the real app serves on /metrics: the app runs in memory (TestKafkaBroker) through a batch
of accepted, flagged and unreadable claims, so the scrape has the `claims_validator_*` and
FastStream `faststream_*` families with samples; the consumer lag, which needs a real consumer,
is read from the service's metrics fed by a fake one. Names come from that scrape, never from a
list written here. The provisioning files and the compose service are checked to fit together.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from aiokafka import TopicPartition  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from service.metrics import ServiceMetrics
from service.settings import PublishSettings, Settings
from service.tables import default_table
from tests.deploy.compose import ROOT, load_compose
from tests.service.fakes import RecordingProducer
from tests.service.test_metrics import (
    IN,
    FakeConsumer,
    FakeSubscriber,
    asgi_get,
    mixed_batch,
    running,
)

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "claims-validator.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "claims-validator.yml"

# Grafana's interval variables, replaced by a duration before parsing.
_GRAFANA_VARIABLES = re.compile(r"\$__(rate_interval|interval|range)\b")
# The series names a family of each type is exposed as (Prometheus text format).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
# Labels Prometheus adds to every scraped series, not the service.
_TARGET_LABELS = {"job", "instance"}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, labels the query matches or groups it on) per vector selector."""
    found: list[tuple[str, set[str]]] = []
    _collect(promql_parser.parse(_GRAFANA_VARIABLES.sub("5m", expr)), frozenset(), found)
    return found


def _collect(node: Any, grouping: frozenset[str], found: list[tuple[str, set[str]]]) -> None:
    """Walk the AST; an aggregation's by/without labels apply to the selectors under it."""
    ast = promql_parser
    if isinstance(node, ast.VectorSelector):
        matched = {m.name for m in node.matchers.matchers if m.name != "__name__"}
        found.append((node.name, matched | grouping))
    elif isinstance(node, ast.MatrixSelector):
        _collect(node.vector_selector, grouping, found)
    elif isinstance(node, ast.AggregateExpr):
        labels = set(node.modifier.labels) if node.modifier is not None else set()
        _collect(node.expr, grouping | labels, found)
    elif isinstance(node, ast.Call):
        for arg in node.args:
            _collect(arg, grouping, found)
    elif isinstance(node, ast.BinaryExpr):
        _collect(node.lhs, grouping, found)
        _collect(node.rhs, grouping, found)
    elif isinstance(node, ast.ParenExpr | ast.UnaryExpr | ast.SubqueryExpr):
        _collect(node.expr, grouping, found)
    else:
        assert isinstance(node, ast.NumberLiteral | ast.StringLiteral), type(node).__name__


def exported(text: str) -> dict[str, set[str]]:
    """Series name -> label names seen on it, for every family of a scrape."""
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in _SUFFIXES[family.type]:
            series.setdefault(family.name + suffix, set())
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def problems(dashboard: dict[str, Any], series: dict[str, set[str]]) -> list[str]:
    out = []
    for title, expr in queries(dashboard):
        for name, labels in selectors(expr):
            if name not in series:
                out.append(f"{title}: {name} is not exported")
            elif unknown := labels - series[name] - _TARGET_LABELS:
                out.append(f"{title}: {name} has no label {sorted(unknown)}")
    return out


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture
async def scraped() -> dict[str, set[str]]:
    table = default_table()
    settings = Settings(publish=PublishSettings(retry_initial_s=0.01, retry_max_s=0.04))
    async with running(settings, table, RecordingProducer()) as (app, broker):
        await broker.publish_batch(*[r.value for r in mixed_batch()], topic=IN)
        status, _, body = await asgi_get(app, "/metrics")
    assert 200 == status
    series = exported(body.decode())
    # Lag is exported per partition only once a consumer has fetched from it.
    metrics = ServiceMetrics(table)
    tp = TopicPartition(IN, 0)
    metrics.consumer_lag.watch(FakeSubscriber(FakeConsumer(high={tp: 9}, positions={tp: 4})))
    await metrics.consumer_lag.refresh()
    lag = exported(_exposition(metrics))
    series["claims_validator_consumer_lag"] |= lag["claims_validator_consumer_lag"]
    return series


def _exposition(metrics: ServiceMetrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()


async def test_every_query_names_an_exported_metric_and_its_labels(
    dashboard: dict[str, Any], scraped: dict[str, set[str]]
) -> None:
    assert queries(dashboard), "the dashboard has no queries"
    assert [] == problems(dashboard, scraped)


async def test_the_check_catches_a_wrong_name_and_a_wrong_label(
    scraped: dict[str, set[str]],
) -> None:
    broken = {
        "panels": [
            {"title": "typo", "targets": [
                {"expr": "sum(rate(claims_validator_verdict_total[$__rate_interval]))"}]},
            {"title": "label", "targets": [
                {"expr": "sum by (rule) (rate(claims_validator_findings_total[5m]))"}]},
            {"title": "le", "targets": [
                {"expr": "sum by (le) (rate(claims_validator_batch_records_sum[5m]))"}]},
        ]
    }
    assert [
        "typo: claims_validator_verdict_total is not exported",
        "label: claims_validator_findings_total has no label ['rule']",
        "le: claims_validator_batch_records_sum has no label ['le']",
    ] == problems(broken, scraped)


def test_the_dashboard_shows_what_operators_watch(dashboard: dict[str, Any]) -> None:
    used: dict[str, set[str]] = {}
    for _, expr in queries(dashboard):
        for name, labels in selectors(expr):
            used.setdefault(name, set()).update(labels)
    assert {"verdict"} <= used["claims_validator_verdicts_total"]
    assert {"rule_id"} <= used["claims_validator_findings_total"]
    assert {"reason"} <= used["claims_validator_dead_letters_total"]
    assert {"topic", "partition"} <= used["claims_validator_consumer_lag"]
    assert {"le"} <= used["claims_validator_batch_duration_seconds_bucket"]
    assert "claims_validator_publish_retries_total" in used
    quantiles = [e for _, e in queries(dashboard) if "histogram_quantile" in e]
    assert any("claims_validator_batch_duration_seconds_bucket" in e for e in quantiles)


def test_panels_use_the_provisioned_datasource(dashboard: dict[str, Any]) -> None:
    provisioned = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))["datasources"]
    (source,) = provisioned
    assert ("prometheus", "http://prometheus:9090") == (source["type"], source["url"])
    assert "prometheus" in load_compose()["services"]
    for panel in panels(dashboard):
        for holder in (panel, *panel.get("targets", [])):
            ds = holder.get("datasource")
            assert ds == {"type": "prometheus", "uid": source["uid"]}, panel["title"]


def test_compose_provisions_the_dashboard_in_the_prometheus_profile() -> None:
    services = load_compose()["services"]
    grafana = services["grafana"]
    assert ["prometheus"] == grafana["profiles"] == services["prometheus"]["profiles"]
    assert grafana["image"].startswith("grafana/grafana:")
    mounts = {
        (ROOT / source).resolve(): target
        for source, target, *_ in (v.split(":") for v in grafana["volumes"])
    }
    assert "/etc/grafana/provisioning" == mounts[(GRAFANA / "provisioning").resolve()]
    (provider,) = yaml.safe_load(PROVIDERS.read_text(encoding="utf-8"))["providers"]
    folder = Path(provider["options"]["path"])
    assert str(folder / DASHBOARD.name) == mounts[DASHBOARD.resolve()]
    assert "127.0.0.1:3000:3000" in grafana["ports"]
