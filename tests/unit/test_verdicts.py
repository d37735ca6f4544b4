"""Verdict construction: the verdict id the hot path re-implements, the event model, the cap."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from service.decode import Malformed
from service.limits import Limits
from service.models.events import Finding, VerdictEvent
from service.tables import default_table
from service.verdicts import (
    VERDICT_NAMESPACE,
    judge_malformed,
    judge_raw,
    verdict_event,
    verdict_id,
)
from tests.unit.casebook import build_claim

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "0b7c2f0e-2d1e-4d4e-9a77-3f0f8f1f8a01|" + "ab" * 32,
        "sha256:" + "0" * 64 + "|" + "f" * 64,
        "événement-ü-日本|x",
    ],
)
def test_verdict_id_is_the_rfc4122_uuid5_of_its_key(key: str) -> None:
    """Redelivered events must keep their ids: the fast id is exactly uuid.uuid5."""
    assert verdict_id(key) == str(uuid.uuid5(VERDICT_NAMESPACE, key))


def test_verdict_id_matches_uuid5_on_every_variant_nibble() -> None:
    """Many keys, so every value of the hex digit that carries the variant bits is seen."""
    keys = [f"evt-{n:06d}|digest" for n in range(500)]
    assert [verdict_id(k) for k in keys] == [str(uuid.uuid5(VERDICT_NAMESPACE, k)) for k in keys]
    assert {verdict_id(k)[19] for k in keys} == set("89ab")


def test_verdict_event_carries_the_findings_and_the_flagged_state() -> None:
    table = default_table()
    warning = Finding("ADDON_PRIMARY_UNLISTED", "warning", 2, "64727", "Line 2: w; do x.", "ref")
    error = Finding("ADDON_WITHOUT_PRIMARY", "error", 1, "64491", "Line 1: e; do y.", "ref")
    accepted = verdict_event(
        cause="evt-1", claim_id="CLM-1", findings=(warning,), table=table, now=NOW
    )
    flagged = verdict_event(
        cause="evt-1", claim_id="CLM-1", findings=(warning, error), table=table, now=NOW
    )
    assert (accepted.verdict, accepted.event_type) == ("accepted", "claim.accepted")
    assert (flagged.verdict, flagged.event_type) == ("flagged", "claim.flagged")
    assert flagged.findings == (warning, error)
    assert flagged.event_id == accepted.event_id == verdict_id(f"evt-1|{table.digest}")
    assert isinstance(flagged, VerdictEvent)
    assert flagged.model_fields_set == set(VerdictEvent.model_fields)


def _warning(n: int) -> Finding:
    return Finding("ADDON_PRIMARY_UNLISTED", "warning", n, "64727", f"Line {n}: w.", "ref")


def _error(n: int) -> Finding:
    return Finding("ADDON_WITHOUT_PRIMARY", "error", n, "64491", f"Line {n}: e.", "ref")


def test_findings_up_to_the_cap_are_listed_as_they_are() -> None:
    table = default_table()
    findings = tuple(_warning(n) for n in range(1, 6))
    verdict = verdict_event(
        cause="evt-1", claim_id="CLM-1", findings=findings, table=table, now=NOW, max_findings=5
    )
    assert findings == verdict.findings


def test_findings_over_the_cap_keep_errors_first_and_sum_up_the_rest() -> None:
    """A flagged verdict always shows an error, even when its errors come last."""
    table = default_table()
    findings = (*(_warning(n) for n in range(1, 9)), _error(9), _error(10))
    verdict = verdict_event(
        cause="evt-1", claim_id="CLM-1", findings=findings, table=table, now=NOW, max_findings=4
    )
    assert "flagged" == verdict.verdict
    assert [_warning(1), _error(9), _error(10)] == list(verdict.findings[:3])
    summary = verdict.findings[3]
    assert ("FINDINGS_TRUNCATED", "warning", None) == (
        summary.rule_id,
        summary.severity,
        summary.line_number,
    )
    assert summary.message.startswith("7 more findings (0 errors, 7 warnings) are not listed")
    assert table.rules["FINDINGS_TRUNCATED"].reference == summary.reference


def test_one_finding_over_the_cap_takes_two_into_the_summary() -> None:
    table = default_table()
    findings = (_error(1), _warning(2), _warning(3), _error(4))
    at_cap = verdict_event(
        cause="evt-1", claim_id="CLM-1", findings=findings, table=table, now=NOW, max_findings=4
    )
    assert findings == at_cap.findings
    over = verdict_event(
        cause="evt-1", claim_id="CLM-1", findings=findings, table=table, now=NOW, max_findings=3
    )
    assert [_error(1), _error(4), "FINDINGS_TRUNCATED"] == [
        *over.findings[:2],
        over.findings[2].rule_id,
    ]
    assert over.findings[2].message.startswith(
        "2 more findings (0 errors, 2 warnings) are not listed: a verdict lists at most 3."
    )
    mixed = verdict_event(
        cause="evt-1", claim_id="CLM-1", findings=findings, table=table, now=NOW, max_findings=2
    )
    assert mixed.findings[1].message.startswith("3 more findings (1 error, 2 warnings)")


def test_capped_warnings_leave_the_verdict_accepted() -> None:
    verdict = verdict_event(
        cause="evt-1",
        claim_id="CLM-1",
        findings=tuple(_warning(n) for n in range(1, 300)),
        table=default_table(),
        now=NOW,
        max_findings=10,
    )
    assert ("accepted", 10) == (verdict.verdict, len(verdict.findings))


def test_a_malformed_claim_with_many_problems_is_capped_without_building_them_all() -> None:
    bad = Malformed(
        claim_id="CLM-1",
        event_id="evt-1",
        problems=tuple((f"claim.service_lines[{i}].units", "wrong", i + 1) for i in range(500)),
        raw_sha256="0" * 64,
    )
    verdict = judge_malformed(bad, default_table(), now=NOW, max_findings=20)
    assert 20 == len(verdict.findings)
    assert "flagged" == verdict.verdict
    assert ["CLAIM_MALFORMED"] * 19 + ["FINDINGS_TRUNCATED"] == [
        f.rule_id for f in verdict.findings
    ]
    assert verdict.findings[-1].message.startswith("481 more findings (481 errors, 0 warnings)")


def test_judge_raw_applies_the_configured_cap() -> None:
    line = {"units": True, "service_date": "x", "charge_amount": True}
    raw = {
        "event_id": "evt-1",
        "event_type": "claim.submitted",
        "schema_version": 1,
        "occurred_at": "2025-03-04T15:02:11Z",
        "claim": build_claim({"service_lines": [line] * 50}),
    }
    verdict = judge_raw(
        json.dumps(raw).encode(), default_table(), now=NOW, limits=Limits(max_findings=30)
    )
    assert isinstance(verdict, VerdictEvent)
    assert 30 == len(verdict.findings)
    assert verdict.findings[-1].message.startswith("121 more findings (121 errors")
