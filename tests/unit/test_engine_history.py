"""The cross-claim rules, as data cases with earlier claims (tests/unit/cases/history.yaml)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.engine import HISTORY_RULE_IDS, evaluate, evaluate_cross_claim
from service.engine.families.history import content_key, prior_claim
from service.models.history import History
from service.ruletable.compiled import RuleTable
from service.tables import default_table
from tests.unit.casebook import CASES_DIR, build_claim, parse

CASES: list[dict[str, Any]] = yaml.safe_load((CASES_DIR / "history.yaml").read_text())


def _history(earlier: list[dict[str, Any]]) -> History:
    return History(
        tuple(prior_claim(parse(build_claim(c)), seq) for seq, c in enumerate(earlier, 1))
    )


def _found(case: dict[str, Any], table: RuleTable) -> list[Any]:
    claim = parse(build_claim(case.get("claim", {})))
    findings = evaluate(claim, table, _history(case.get("earlier", [])))
    return [f for f in findings if f.rule_id in HISTORY_RULE_IDS]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_a_history_carrying_the_claim_s_content_key_judges_the_same(case: dict[str, Any]) -> None:
    table = default_table()
    claim = parse(build_claim(case.get("claim", {})))
    computed = evaluate(claim, table, _history(case.get("earlier", [])))
    given = History(_history(case.get("earlier", [])).claims, content_key(claim))
    assert computed == evaluate(claim, table, given)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_history_case(case: dict[str, Any]) -> None:
    found = _found(case, default_table())
    expected = case.get("expect", [])
    assert {(e["rule_id"], e.get("line")) for e in expected} == {
        (f.rule_id, f.line_number) for f in found
    }
    for e in expected:
        (match,) = [f for f in found if f.rule_id == e["rule_id"]]
        assert e["names"] in match.message
        for secret in ("TESTMEMBER1", "1951-07-14"):
            assert secret not in match.message


def test_every_history_rule_fires_and_stays_quiet_somewhere() -> None:
    fired = {e["rule_id"] for c in CASES for e in c.get("expect", [])}
    assert fired == set(HISTORY_RULE_IDS)
    assert any(not c.get("expect") for c in CASES)


def test_without_history_the_cross_claim_rules_are_not_judged() -> None:
    case = next(c for c in CASES if c["name"].startswith("the same content"))
    claim = parse(build_claim(case["claim"]))
    assert not [f for f in evaluate(claim, default_table()) if f.rule_id in HISTORY_RULE_IDS]


def _apart(table: RuleTable) -> RuleTable:
    assert table.frequency is not None
    limits = tuple(dataclasses.replace(lim, apart=True) for lim in table.frequency["MEDICARE"])
    return dataclasses.replace(table, frequency={**table.frequency, "MEDICARE": limits})


def test_counting_diagnostic_and_therapeutic_apart_is_a_data_switch() -> None:
    # Four diagnostic (KX) sessions, then a therapeutic one: five together, four plus one apart.
    earlier = [
        {"claim_id": f"CLM-D{i}", "payer_id": "MEDICARE",
         "service_lines": [{"modifiers": ["KX"], "service_date": day}]}
        for i, day in enumerate(("2025-01-10", "2025-03-10", "2025-05-10", "2025-07-10"), 1)
    ]
    therapeutic = {"claim": {"payer_id": "MEDICARE",
                             "service_lines": [{"service_date": "2025-09-10"}]},
                   "earlier": earlier}
    diagnostic = {"claim": {"payer_id": "MEDICARE",
                            "service_lines": [{"modifiers": ["KX"], "service_date": "2025-09-10"}]},
                  "earlier": earlier}
    table = default_table()
    assert [f.rule_id for f in _found(therapeutic, table)] == ["FREQUENCY_LIMIT"]
    assert _found(therapeutic, _apart(table)) == []
    (over,) = _found(diagnostic, _apart(table))
    assert "5 diagnostic sessions" in over.message


def test_the_default_count_and_its_source_are_named_in_the_data() -> None:
    data = yaml.safe_load(
        (Path(__file__).parents[2] / "service/ruletable/data/frequency_limits.yaml").read_text()
    )
    injections = next(lim for lim in data["limits"] if lim["id"] == "MCR-FREQ-FACET-INJ")
    assert injections["count"] == "together"
    assert "A57787" in injections["count_source"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_cross_claim_findings_come_after_the_rest(case: dict[str, Any]) -> None:
    """The Kafka shell judges the other rules while the history is fetched, then appends these."""
    table = default_table()
    claim = parse(build_claim(case.get("claim", {})))
    history = _history(case.get("earlier", []))
    assert evaluate(claim, table, history) == (
        *evaluate(claim, table), *evaluate_cross_claim(claim, table, history)
    )
