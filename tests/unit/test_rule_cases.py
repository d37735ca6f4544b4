"""Every rule is specified by data cases; each case runs through the real engine and table."""

from __future__ import annotations

import pytest

from service.engine import FAMILIES, evaluate
from service.tables import default_table
from tests.unit.casebook import Case, load_cases, parse

CASES = load_cases()
FAMILY_RULES = {name: ids for name, ids, _ in FAMILIES}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.family}: {c.name}" for c in CASES])
def test_rule_case(case: Case) -> None:
    """The family's findings for the case's claim are exactly the expected (rule_id, line) set."""
    table = default_table()
    findings = evaluate(parse(case.claim), table)
    got = {(f.rule_id, f.line_number) for f in findings if f.rule_id in FAMILY_RULES[case.family]}
    assert case.expect == got


def test_every_rule_has_a_failing_and_a_passing_case() -> None:
    """No rule ships without a case where it fires, no family without one where it stays quiet."""
    fired = {rule for case in CASES for rule, _ in case.expect}
    missing = sorted(set().union(*FAMILY_RULES.values()) - fired)
    assert missing == []
    quiet_families = {case.family for case in CASES if not case.expect}
    assert sorted(FAMILY_RULES) == sorted(quiet_families)


def test_case_files_name_known_families() -> None:
    assert {c.family for c in CASES} <= set(FAMILY_RULES)
