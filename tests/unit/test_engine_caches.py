"""The engine keeps per-value results (diagnosis lists, modifier lists): they must never go stale.

A cached answer is only right for the table it was worked out under, and a bounded cache that
fills up must keep answering correctly.
"""

from __future__ import annotations

import dataclasses

import pytest

from service.engine import evaluate
from service.engine.families import diagnoses
from service.models.events import Claim
from service.ruletable.compiled import RuleTable
from service.ruletable.load import default_table
from tests.unit.casebook import build_claim


def _claim(diagnosis_codes: list[str], modifiers: list[str] | None = None) -> Claim:
    line = {"procedure_code": "64490", "diagnosis_pointers": [1]}
    if modifiers is not None:
        line["modifiers"] = modifiers
    return Claim.model_validate(
        build_claim({"diagnosis_codes": diagnosis_codes, "service_lines": [line]})
    )


def _rules(claim: Claim, table: RuleTable) -> set[tuple[str, int | None]]:
    return {(f.rule_id, f.line_number) for f in evaluate(claim, table)}


def test_a_diagnosis_list_is_judged_again_under_another_table() -> None:
    shipped = default_table()
    assert shipped.policies is not None
    no_regions = dataclasses.replace(
        shipped, policies=dataclasses.replace(shipped.policies, dx_region={})
    )
    lumbar_dx = _claim(["M47.816"])  # a lumbar diagnosis on a cervical facet line
    mismatch = ("DIAGNOSIS_REGION_MISMATCH", 1)
    assert mismatch in _rules(lumbar_dx, shipped)
    assert mismatch not in _rules(lumbar_dx, no_regions)
    assert mismatch in _rules(lumbar_dx, shipped)


def test_a_full_diagnosis_cache_keeps_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnoses, "_DIAGNOSES_CACHED", 2)
    table = default_table()
    lists = [["M47.812"], ["M54.5"], ["M47.812", "M47.812"], ["M47.812"], ["XYZ"]]
    expected = [
        set(),
        {("DIAGNOSIS_NOT_BILLABLE", None)},
        {("DIAGNOSIS_DUPLICATE", None)},
        set(),
        {("DIAGNOSIS_INVALID", None)},
    ]
    for codes, want in zip(lists, expected, strict=True):
        got = {r for r in _rules(_claim(codes), table) if r[0].startswith("DIAGNOSIS_")}
        assert got == want, codes
        assert diagnoses._cache is not None
        assert len(diagnoses._cache[1]) <= 2  # bounded: memory does not grow with the stream


def test_a_modifier_list_seen_before_gets_the_same_findings() -> None:
    table = default_table()
    first = _rules(_claim(["M47.812"], ["50", "50", "RT"]), table)
    again = _rules(_claim(["M47.812"], ["50", "50", "RT"]), table)
    assert {("MODIFIER_DUPLICATE", 1), ("MODIFIER_50_WITH_ANATOMIC", 1)} <= first
    assert first == again
