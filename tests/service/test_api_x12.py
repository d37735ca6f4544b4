"""`POST /v1/claims:validate-x12`: an 837P judged over HTTP as `claims-validator ingest` plus the
Kafka path would judge it, with the intake's errors, its limits, and its log line.

The expected verdicts come from running the real command on the same text and judging each
event it writes with `judge_raw`, the Kafka path's dispatch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from service.routing import route
from service.ruletable.compiled import RuleTable
from tests.service.asgi import call
from tests.service.test_api import NOW, api, counted
from tests.service.test_metrics import TOPICS, Record
from tests.unit.x12_files import Line, Patient, Sub, TClaim, interchange, transaction

X12 = "/v1/claims:validate-x12"
MEMBER = "MBR7731Q"
HEADERS = (("content-type", "application/edi-x12"),)


def four_claims() -> str:
    """Accepted and flagged claims under two subscribers and a dependent."""
    return interchange(
        [
            transaction(
                [
                    Sub(
                        member_id=MEMBER,
                        claims=[
                            TClaim("X1", lines=[Line(), Line("64491")]),
                            TClaim("X2", lines=[Line("64492")]),  # add-on without primary
                        ],
                    ),
                    Sub(
                        member_id="MBR0002X",
                        claims=[TClaim("X3", lines=[Line("99213", units="1")])],
                        dependents=[Patient("20100101", [TClaim("X4", pos="02")])],
                    ),
                ]
            )
        ]
    )


def broken(text: str) -> str:
    """Claim X2's unit count made not a number: the intake rejects X2 only."""
    lines = text.splitlines()
    start = next(i for i, s in enumerate(lines) if s.startswith("CLM*X2"))
    sv1 = next(i for i in range(start, len(lines)) if lines[i].startswith("SV1*"))
    lines[sv1] = lines[sv1].replace("*UN*1*", "*UN*X*")
    return "\n".join(lines) + "\n"


def ingested(tmp_path: Path, text: str) -> tuple[list[bytes], list[dict[str, Any]]]:
    """What the `claims-validator ingest` command writes for `text`: events and errors."""
    path = tmp_path / "claims.837"
    path.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "service", "ingest", str(path)],
        capture_output=True,
        check=False,
        timeout=120,
    )
    errors = [orjson.loads(line) for line in done.stderr.splitlines()]
    return done.stdout.splitlines(), errors


def kafka_verdict(event: bytes, table: RuleTable) -> dict[str, Any]:
    out = route(Record(event), table, TOPICS, now=NOW).out
    assert out.value is not None
    parsed: dict[str, Any] = orjson.loads(out.value)
    return parsed


async def test_each_claim_gets_the_verdict_ingest_and_the_kafka_path_give(
    table: RuleTable, tmp_path: Path
) -> None:
    text = four_claims()
    app, metrics = api(table)
    events, errors = ingested(tmp_path, text)
    assert [] == errors

    with capture_logs() as logs:
        answer = await call(app, "POST", X12, text.encode(), headers=HEADERS)

    assert 200 == answer.status
    body = answer.json()
    assert [kafka_verdict(e, table) for e in events] == [r["verdict"] for r in body["results"]]
    assert ["X1", "X2", "X3", "X4"] == [r["claim_id"] for r in body["results"]]
    statuses = [r["status"] for r in body["results"]]
    assert {"accepted", "flagged"} <= set(statuses)
    assert [] == body["intake_errors"]
    assert 0 == body["counts"]["rejected"]
    clm = [n for n, s in enumerate(text.splitlines(), 1) if s.startswith("CLM*")]
    assert clm == [r["index"] for r in body["results"]]
    [line] = [e for e in logs if e["event"] == "http_request"]
    assert (X12, ["X1", "X2", "X3", "X4"]) == (line["route"], line["claim_ids"])
    assert MEMBER not in repr(logs)
    assert {(X12, "200"): 1.0} == counted(metrics)


async def test_a_broken_claim_is_named_in_the_intake_errors_and_the_rest_judged(
    table: RuleTable, tmp_path: Path
) -> None:
    text = broken(four_claims())
    app, _ = api(table)
    events, errors = ingested(tmp_path, text)

    answer = await call(app, "POST", X12, text.encode(), headers=HEADERS)

    assert 200 == answer.status
    body = answer.json()
    assert ["X1", "X3", "X4"] == [r["claim_id"] for r in body["results"]]
    assert [kafka_verdict(e, table) for e in events] == [r["verdict"] for r in body["results"]]
    # The command's errors, less the file name, with `detail` worded as `message`.
    expected = [
        {
            "error": e["error"],
            "segment": e["segment"],
            "segment_id": e.get("segment_id"),
            "claim_id": e.get("claim_id"),
            "element": e.get("element"),
            "message": e.get("message", e.get("detail")),
        }
        for e in errors
    ]
    assert expected == body["intake_errors"]
    assert [("x12-error", "SV1", "SV104"), ("claim-rejected", None, None)] == [
        (e["error"], e["segment_id"], e["element"]) for e in body["intake_errors"]
    ]
    assert "X2" == body["intake_errors"][1]["claim_id"]
    assert 1 == body["counts"]["rejected"]


async def test_text_that_is_not_x12_is_an_intake_error_not_a_crash(table: RuleTable) -> None:
    app, _ = api(table)

    answer = await call(app, "POST", X12, b"ISA*00*garbage~", headers=HEADERS)

    assert 200 == answer.status
    body = answer.json()
    assert [] == body["results"]
    assert ["x12-unreadable"] == [e["error"] for e in body["intake_errors"]]


async def test_limits_are_the_other_endpoints_limits(table: RuleTable) -> None:
    text = four_claims().encode()
    small, _ = api(table, max_body_bytes=len(text) - 1)
    few, _ = api(table, max_batch_claims=3)

    too_big = await call(small, "POST", X12, text, headers=HEADERS)
    too_many = await call(few, "POST", X12, text, headers=HEADERS)

    assert (413, "body-too-large") == (too_big.status, too_big.json()["error"])
    assert (413, "too-many-claims") == (too_many.status, too_many.json()["error"])
    assert "4 claims" in too_many.json()["detail"]


async def test_without_pyx12_the_answer_is_501_saying_what_to_install(
    table: RuleTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyx12.x12context", None)  # import fails as if absent
    app, _ = api(table)

    answer = await call(app, "POST", X12, four_claims().encode(), headers=HEADERS)

    assert 501 == answer.status
    assert "x12-not-installed" == answer.json()["error"]
    assert "claims-validator[x12]" in answer.json()["detail"]
