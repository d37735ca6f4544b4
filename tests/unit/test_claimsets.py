"""Hand-coded claim sets across specialties, judged by the real engine and the shipped table.

`claimsets/good.yaml`: correctly coded ordinary claims; none may get an error finding (a flagged
good claim holds up payment), and each warning it gets must be one the entry lists under
`warnings` (reviewed: the warning is right for that claim). `claimsets/bad.yaml`: incorrectly
coded claims; each claim's error findings must be exactly its `expect` list (rule and line), so a
bad claim is flagged for the right rule and for nothing else. Each entry names its specialty, why,
and source.

A line without a `service_date` is dated `SET_DATE`, inside the April 2025 ICD-10-CM edition and
the 2025 fee-schedule year the table ships, so no edition-uncertainty warning blurs the verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from service.engine import evaluate
from service.models.events import Finding
from service.tables import default_table
from tests.unit.casebook import build_claim, parse

SETS = Path(__file__).parent / "claimsets"
GOOD: list[dict[str, Any]] = yaml.safe_load((SETS / "good.yaml").read_text(encoding="utf-8"))
BAD: list[dict[str, Any]] = yaml.safe_load((SETS / "bad.yaml").read_text(encoding="utf-8"))
PAYERS = {"MEDICARE", "AETNA", "BCBS", "CIGNA", "UHC"}
SET_DATE = "2025-06-10"


def _findings(entry: dict[str, Any]) -> tuple[Finding, ...]:
    claim = dict(entry["claim"])
    claim["service_lines"] = [
        {"service_date": SET_DATE, **line} for line in claim.get("service_lines", [{}])
    ]
    return evaluate(parse(build_claim(claim)), default_table())


@pytest.mark.parametrize("entry", GOOD, ids=[e["id"] for e in GOOD])
def test_a_correctly_coded_claim_gets_no_error_and_only_its_reviewed_warnings(
    entry: dict[str, Any],
) -> None:
    findings = _findings(entry)
    errors = [(f.rule_id, f.line_number, f.message) for f in findings if f.severity == "error"]
    assert errors == []
    warnings = {f.rule_id for f in findings if f.severity == "warning"}
    assert warnings == set(entry.get("warnings", [])), [f.message for f in findings]


@pytest.mark.parametrize("entry", BAD, ids=[e["id"] for e in BAD])
def test_an_incorrectly_coded_claim_gets_its_rule_and_no_other_error(
    entry: dict[str, Any],
) -> None:
    findings = _findings(entry)
    expected = {(e["rule_id"], e.get("line")) for e in entry["expect"]}
    got = {(f.rule_id, f.line_number) for f in findings if f.severity == "error"}
    assert got == expected, [f.message for f in findings]


def test_the_sets_cover_specialties_and_payers_and_every_entry_says_why_and_where_from() -> None:
    for entry in GOOD + BAD:
        for key in ("why", "source", "specialty"):
            assert entry[key].strip(), (entry["id"], key)
        assert entry["claim"]["payer_id"] in PAYERS, entry["id"]
    assert len({e["specialty"] for e in GOOD}) >= 10
    assert len({e["specialty"] for e in BAD}) >= 10
    assert {e["claim"]["payer_id"] for e in GOOD} == PAYERS
    assert {e["claim"]["payer_id"] for e in BAD} == PAYERS
    assert all(e["expect"] for e in BAD)
    ids = [e["id"] for e in GOOD + BAD]
    assert len(ids) == len(set(ids))
