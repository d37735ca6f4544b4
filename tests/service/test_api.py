"""The HTTP API: the Kafka path's verdicts over HTTP, its limits, its catalogue, its page.

Requests go straight into the ASGI app (`tests.service.asgi.call`); what is checked is what a
client sees (status, JSON body, headers) and what an operator sees (the metrics and the one
log line per request, which must never carry claim values).
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from service.logs import configure_logging
from service.metrics import ServiceMetrics
from service.routing import route
from service.ruletable.compiled import RuleTable
from service.settings import ApiSettings, LogSettings, Settings
from service.web.api import create_api
from tests.service.asgi import call
from tests.service.claims import BIRTH_DATE, FLAGGED_CODES, MEMBER_ID, claim_event, encode
from tests.service.test_metrics import TOPICS, Record

REPO = Path(__file__).parents[2]
SAMPLES = REPO / "samples" / "claims.jsonl"
NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
VALIDATE = "/v1/claims:validate"
BATCH = "/v1/claims:validate-batch"


def api(table: RuleTable, **limits: Any) -> tuple[FastAPI, ServiceMetrics]:
    metrics = ServiceMetrics(table)
    settings = Settings(api=ApiSettings(**limits))
    return create_api(table, settings, metrics, clock=lambda: NOW), metrics


def sample_lines() -> list[bytes]:
    return [line for line in SAMPLES.read_bytes().splitlines() if line.strip()]


def published(raw: bytes, table: RuleTable) -> bytes:
    """The value the Kafka path publishes for `raw` (a verdict)."""
    out = route(Record(raw), table, TOPICS, now=NOW).out
    assert out.topic in (TOPICS.accepted, TOPICS.flagged)
    assert out.value is not None
    return out.value


# ------------------------------------------------------------------ one claim ----


async def test_each_sample_gets_the_verdict_the_kafka_path_publishes(table: RuleTable) -> None:
    app, _ = api(table)
    statuses = []
    for raw in sample_lines():
        answer = await call(app, "POST", VALIDATE, raw)
        statuses.append(answer.status)
        if answer.status == 200:
            assert published(raw, table) == answer.body
            assert "application/json" == answer.headers["content-type"]
        else:  # the malformed sample: its flagged verdict rides in the 422
            assert 422 == answer.status
            body = answer.json()
            assert "claim-malformed" == body["error"]
            assert orjson.loads(published(raw, table)) == body["verdict"]
            assert body["verdict"]["findings"] == body["problems"]
    assert [422] == [s for s in statuses if s != 200]
    assert len(statuses) == len(sample_lines())


async def test_a_malformed_claim_gets_422_with_each_field_and_line(table: RuleTable) -> None:
    event = claim_event("BAD-1")
    event["claim"]["service_lines"][1]["units"] = 0
    event["claim"]["service_lines"][2]["service_date"] = "someday"
    app, _ = api(table)

    answer = await call(app, "POST", VALIDATE, encode(event))

    assert 422 == answer.status
    problems = answer.json()["problems"]
    assert [
        ("CLAIM_MALFORMED", 2, "claim.service_lines[1].units"),
        ("CLAIM_MALFORMED", 3, "claim.service_lines[2].service_date"),
    ] == [(p["rule_id"], p["line_number"], p["message"].split(":")[0]) for p in problems]
    assert "flagged" == answer.json()["verdict"]["verdict"]


async def test_a_bare_claim_is_judged_as_its_event_would_be(table: RuleTable) -> None:
    event = claim_event("BARE-1", FLAGGED_CODES)
    bare = orjson.dumps(event["claim"])
    app, _ = api(table)

    as_event = (await call(app, "POST", VALIDATE, encode(event))).json()
    first = await call(app, "POST", VALIDATE, bare)
    again = await call(app, "POST", VALIDATE, bare)

    assert 200 == first.status
    verdict = first.json()
    assert as_event["findings"] == verdict["findings"]
    assert "flagged" == verdict["verdict"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", verdict["causation_id"])
    assert verdict["event_id"] == again.json()["event_id"]  # same claim, same verdict id


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "not-json"),
        (b"{not json", "not-json"),
        (b"[1, 2]", "not-an-object"),
        (b'{"claim": {"payer_id": "X"}}', "no-claim-id"),
    ],
)
async def test_unreadable_input_gets_400_naming_why(
    table: RuleTable, body: bytes, error: str
) -> None:
    app, _ = api(table)

    answer = await call(app, "POST", VALIDATE, body)

    assert 400 == answer.status
    assert error == answer.json()["error"]
    assert answer.json()["detail"]


# ------------------------------------------------------------------ batches ----


async def test_a_json_lines_batch_gets_one_result_per_claim_by_line_number(
    table: RuleTable,
) -> None:
    lines = sample_lines()
    body = b"\n".join([lines[0], b"", b"{broken", *lines[1:]]) + b"\n"
    app, _ = api(table)

    answer = await call(app, "POST", BATCH, body)

    assert 200 == answer.status
    result = answer.json()
    assert table.version == result["rule_table_version"]
    indexes = [r["index"] for r in result["results"]]
    assert [1, 3, *range(4, 4 + len(lines) - 1)] == indexes
    assert {"index": 3, "status": "unreadable", "claim_id": None, "verdict": None} == {
        k: v for k, v in result["results"][1].items() if k != "error"
    }
    assert "not-json" == result["results"][1]["error"]["error"]
    judged = [r for r in result["results"] if r["verdict"] is not None]
    for item, raw in zip(judged, lines, strict=True):
        assert orjson.loads(published(raw, table)) == item["verdict"]
    counts = result["counts"]
    assert (1, 1, len(lines)) == (
        counts["malformed"],
        counts["unreadable"],
        counts["accepted"] + counts["flagged"] + counts["malformed"],
    )


async def test_a_json_array_batch_is_judged_like_the_same_claims_as_lines(
    table: RuleTable,
) -> None:
    events = [claim_event("ARR-1"), claim_event("ARR-2", FLAGGED_CODES)]
    app, _ = api(table)

    as_array = (await call(app, "POST", BATCH, orjson.dumps(events))).json()
    as_lines = (await call(app, "POST", BATCH, b"\n".join(map(encode, events)))).json()

    assert as_array == as_lines
    assert ["accepted", "flagged"] == [r["status"] for r in as_array["results"]]


async def test_a_broken_json_array_is_refused_whole(table: RuleTable) -> None:
    app, _ = api(table)

    answer = await call(app, "POST", BATCH, b'[{"claim": 1}, ')

    assert (400, "not-json") == (answer.status, answer.json()["error"])


# ------------------------------------------------------------------ limits ----


async def test_a_body_over_the_limit_gets_413_declared_or_not(table: RuleTable) -> None:
    app, _ = api(table, max_body_bytes=2048)
    big = orjson.dumps([claim_event(f"BIG-{i}") for i in range(10)])
    assert len(big) > 2048

    declared = await call(app, "POST", BATCH, big)
    streamed = await call(app, "POST", VALIDATE, big, chunk_size=512)

    for answer in (declared, streamed):
        assert 413 == answer.status
        assert "body-too-large" == answer.json()["error"]
        assert "api.max_body_bytes" in answer.json()["detail"]


async def test_a_batch_over_the_claim_limit_gets_413_before_any_is_judged(
    table: RuleTable,
) -> None:
    app, metrics = api(table, max_batch_claims=3)
    body = b"\n".join(encode(claim_event(f"N-{i}")) for i in range(4))

    with capture_logs() as logs:
        answer = await call(app, "POST", BATCH, body)

    assert 413 == answer.status
    assert "too-many-claims" == answer.json()["error"]
    assert "4 claims" in answer.json()["detail"]
    [line] = [e for e in logs if e["event"] == "http_request"]
    assert [] == line["claim_ids"]
    assert {(BATCH, "413"): 1.0} == counted(metrics)


async def test_a_body_that_never_finishes_gets_408(table: RuleTable) -> None:
    app, _ = api(table, body_timeout_s=0.05)

    answer = await call(app, "POST", VALIDATE, b'{"event_id": ', stall=True)

    assert (408, "body-timeout") == (answer.status, answer.json()["error"])


async def test_a_batch_judged_past_its_deadline_gets_503(table: RuleTable) -> None:
    app, _ = api(table, judge_timeout_s=0.000_001)
    body = b"\n".join(encode(claim_event(f"SLOW-{i}")) for i in range(120))

    answer = await call(app, "POST", BATCH, body)

    assert (503, "judge-timeout") == (answer.status, answer.json()["error"])
    assert "api.judge_timeout_s" in answer.json()["detail"]


# ------------------------------------------------------------------ catalogue ----


async def test_the_catalogue_lists_every_rule_with_meaning_action_and_source(
    table: RuleTable,
) -> None:
    app, _ = api(table)

    rules = (await call(app, "GET", "/v1/rules")).json()
    modifiers = (await call(app, "GET", "/v1/rules", query="family=modifiers")).json()
    searched = (await call(app, "GET", "/v1/rules", query="q=ADDON+primary")).json()

    assert sorted(table.rules) == sorted(r["rule_id"] for r in rules)
    by_id = {r["rule_id"]: r for r in rules}
    info = table.rules["ADDON_WITHOUT_PRIMARY"]
    assert {
        "rule_id": "ADDON_WITHOUT_PRIMARY",
        "family": info.family,
        "severity": info.severity,
        "meaning": " ".join(info.summary.split()),
        "what_to_do": " ".join(info.action.split()),
        "source": " ".join(info.reference.split()),
    } == by_id["ADDON_WITHOUT_PRIMARY"]
    assert modifiers
    assert {"modifiers"} == {r["family"] for r in modifiers}
    assert "ADDON_WITHOUT_PRIMARY" in [r["rule_id"] for r in searched]
    assert len(searched) < len(rules)


async def test_the_rule_table_names_its_version_digest_and_sources(table: RuleTable) -> None:
    app, _ = api(table)

    info = (await call(app, "GET", "/v1/rule-table")).json()

    assert (table.version, table.digest, len(table.rules)) == (
        info["version"],
        info["digest"],
        info["rules"],
    )
    tables = [p["table"] for p in info["provenance"]]
    assert {"aoc", "icd10cm-2026apr", "mue"} <= set(tables)
    assert all(re.fullmatch(r"[0-9a-f]{64}|n/a", p["source_sha256"]) for p in info["provenance"])


# ------------------------------------------------------------------ the page ----


async def test_the_page_and_everything_it_loads_come_from_the_service(table: RuleTable) -> None:
    app, _ = api(table)

    page = await call(app, "GET", "/")
    assert 200 == page.status
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.body.decode()
    loaded = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert "/static/app.js" in loaded
    assert "/static/style.css" in loaded
    assert not [u for u in loaded if "//" in u], "the page must fetch nothing from elsewhere"
    for url in loaded:
        assert 200 == (await call(app, "GET", url)).status, url
    assert 404 == (await call(app, "GET", "/static/missing.js")).status


async def test_the_samples_are_the_repository_samples(table: RuleTable) -> None:
    app, _ = api(table)

    samples = (await call(app, "GET", "/v1/samples")).json()

    assert [orjson.loads(line) for line in sample_lines()] == [s["event"] for s in samples]
    assert (REPO / "service" / "web" / "samples.jsonl").read_bytes() == SAMPLES.read_bytes(), (
        "cp samples/claims.jsonl service/web/samples.jsonl"
    )


# ------------------------------------------------------------------ operators ----


def counted(metrics: ServiceMetrics) -> dict[tuple[str, str], float]:
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    return {
        (s.labels["route"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "claims_validator_http_requests_total"
    }


async def test_requests_are_counted_by_route_template_and_status(table: RuleTable) -> None:
    app, metrics = api(table)

    await call(app, "POST", VALIDATE, encode(claim_event("C-1")))
    await call(app, "POST", VALIDATE, encode(claim_event("C-2")))
    await call(app, "POST", VALIDATE, b"nope")
    await call(app, "GET", "/v1/rules", query="q=anything-a-user-typed")
    await call(app, "GET", f"/v1/{MEMBER_ID}")

    assert {
        (VALIDATE, "200"): 2.0,
        (VALIDATE, "400"): 1.0,
        ("/v1/rules", "200"): 1.0,
        ("other", "404"): 1.0,
    } == counted(metrics)


async def test_one_log_line_per_request_with_ids_only_never_the_claim(
    table: RuleTable,
) -> None:
    """Claims carry patient data: the rendered log output names claim and rule ids only."""
    stream = io.StringIO()
    configure_logging(Settings(log=LogSettings(format="json")), stream=stream, cache=False)
    app, _ = api(table)
    flagged = claim_event("LOG-1", FLAGGED_CODES)
    malformed = claim_event("LOG-2")
    malformed["claim"]["service_lines"][0]["units"] = MEMBER_ID
    bare = orjson.dumps(claim_event("LOG-3")["claim"])
    unreadable = b'{"claim": {"member": "' + MEMBER_ID.encode() + b'"}'

    await call(app, "POST", VALIDATE, encode(flagged))
    await call(app, "POST", VALIDATE, encode(malformed))
    await call(app, "POST", VALIDATE, bare)
    await call(app, "POST", VALIDATE, unreadable)
    await call(app, "POST", BATCH, encode(flagged) + b"\n" + encode(malformed))

    text = stream.getvalue()
    assert MEMBER_ID not in text
    assert BIRTH_DATE not in text
    lines = [orjson.loads(line) for line in text.splitlines()]
    requests = [line for line in lines if line["event"] == "http_request"]
    assert 5 == len(requests)
    allowed = {"event", "level", "timestamp", "method", "route", "status", "claim_ids",
               "rule_ids", "duration_ms"}
    assert all(set(line) <= allowed for line in requests)
    assert [
        (200, ["LOG-1"], ["ADDON_WITHOUT_PRIMARY"]),
        (422, ["LOG-2"], ["CLAIM_MALFORMED"]),
        (200, ["LOG-3"], []),
        (400, [], []),
        (200, ["LOG-1", "LOG-2"], ["ADDON_WITHOUT_PRIMARY", "CLAIM_MALFORMED"]),
    ] == [(line["status"], line["claim_ids"], line["rule_ids"]) for line in requests]
