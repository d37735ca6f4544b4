"""Hand-coded claim sets across specialties, judged by the real engine and the shipped table.

`claimsets/good.yaml`: correctly coded ordinary claims; none may get an error finding (a flagged
good claim holds up payment). `claimsets/bad.yaml`: incorrectly coded claims; each must get its
expected rule, as an error, on its expected line. Each claim names its specialty, why, and source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from service.engine import evaluate
from service.tables import default_table
from tests.unit.casebook import build_claim, parse

SETS = Path(__file__).parent / "claimsets"
GOOD: list[dict[str, Any]] = yaml.safe_load((SETS / "good.yaml").read_text(encoding="utf-8"))
BAD: list[dict[str, Any]] = yaml.safe_load((SETS / "bad.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("entry", GOOD, ids=[e["id"] for e in GOOD])
def test_a_correctly_coded_claim_gets_no_error(entry: dict[str, Any]) -> None:
    findings = evaluate(parse(build_claim(entry["claim"])), default_table())
    errors = [(f.rule_id, f.line_number, f.message) for f in findings if f.severity == "error"]
    assert errors == []


@pytest.mark.parametrize("entry", BAD, ids=[e["id"] for e in BAD])
def test_an_incorrectly_coded_claim_gets_its_rule(entry: dict[str, Any]) -> None:
    findings = evaluate(parse(build_claim(entry["claim"])), default_table())
    expect = entry["expect"]
    got = {(f.rule_id, f.line_number, f.severity) for f in findings}
    assert (expect["rule_id"], expect["line"], "error") in got


def test_the_sets_cover_ten_specialties_and_every_entry_says_why_and_where_from() -> None:
    for entry in GOOD + BAD:
        for key in ("why", "source", "specialty"):
            assert entry[key].strip(), (entry["id"], key)
    assert len({e["specialty"] for e in GOOD}) >= 10
    assert len({e["specialty"] for e in BAD}) >= 10
    ids = [e["id"] for e in GOOD + BAD]
    assert len(ids) == len(set(ids))
