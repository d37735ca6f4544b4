"""Modifiers beyond the data cases: messages, the per-payer bilateral switch, indicators as data."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from service.engine import evaluate
from service.engine.families import modifiers
from service.models.events import Finding
from service.ruletable.compiled import RuleTable
from service.tables import default_table
from tests.unit.casebook import build_claim, parse

SPLIT = [
    {"procedure_code": "64490", "modifiers": ["RT"]},
    {"procedure_code": "64490", "modifiers": ["LT"]},
]


def _findings(table: RuleTable, lines: list[dict[str, Any]], **claim: Any) -> list[Finding]:
    parsed = parse(build_claim({**claim, "service_lines": lines}))
    return [f for f in evaluate(parsed, table) if f.rule_id in modifiers.RULE_IDS]


def _got(table: RuleTable, lines: list[dict[str, Any]], **claim: Any) -> set[tuple[str, int]]:
    return {(f.rule_id, f.line_number or 0) for f in _findings(table, lines, **claim)}


def test_split_bilateral_lines_are_accepted_for_payers_that_ask_for_them() -> None:
    shipped = default_table()
    assert shipped.policies is not None
    regence = dataclasses.replace(shipped.policies.national, payer_id="REGENCE", split_lines=True)
    table = dataclasses.replace(
        shipped,
        policies=dataclasses.replace(
            shipped.policies, payers={**shipped.policies.payers, "REGENCE": regence}
        ),
    )
    assert _got(table, SPLIT, payer_id="REGENCE") == set()
    assert _got(table, SPLIT, payer_id="MEDICARE") == {("BILATERAL_SPLIT_LINES", 2)}
    # The shipped table lets no payer split a bilateral service.
    assert {p for p, r in shipped.policies.payers.items() if r.split_lines} == set()
    assert not shipped.policies.national.split_lines
    assert _got(default_table(), SPLIT, payer_id="REGENCE") == {("BILATERAL_SPLIT_LINES", 2)}


def test_split_message_names_both_lines_and_the_fix() -> None:
    (found,) = _findings(default_table(), SPLIT)
    assert found.procedure_code == "64490"
    assert found.message == (
        "Line 2: 64490 is billed for the right and left side on lines 1 and 2; bill a bilateral "
        "64490 on one line with modifier 50 and 1 unit, and remove the other line."
    )


def test_a_third_side_line_waits_for_its_own_partner() -> None:
    lines = [
        {"procedure_code": "64490", "modifiers": ["RT"]},
        {"procedure_code": "64490", "modifiers": ["RT"]},
        {"procedure_code": "64490", "modifiers": ["LT"]},
    ]
    (found,) = _findings(default_table(), lines)
    assert (found.rule_id, found.line_number) == ("BILATERAL_SPLIT_LINES", 3)
    assert "on lines 1 and 3" in found.message


def test_lines_with_50_or_both_sides_are_not_halves_of_a_split() -> None:
    lines = [
        {"procedure_code": "64490", "modifiers": ["50", "RT"]},
        {"procedure_code": "64490", "modifiers": ["LT"]},
        {"procedure_code": "64490", "modifiers": ["RT", "LT"]},
    ]
    assert _got(default_table(), lines) == {
        ("MODIFIER_50_WITH_ANATOMIC", 1),
        ("MODIFIER_RT_LT_SAME_LINE", 3),
    }


def test_bilateral_and_pctc_checks_follow_the_fee_indicators_in_the_table() -> None:
    table = default_table()
    fee = dict(table.fee)
    fee["64490"] = dataclasses.replace(table.fee["64490"], bilateral="2", pctc="1")
    changed = dataclasses.replace(table, fee=fee)
    (found,) = _findings(changed, [{"procedure_code": "64490", "modifiers": ["50"]}])
    assert found.rule_id == "MODIFIER_50_NOT_ALLOWED"
    assert found.message == (
        "Line 1: 64490 cannot take modifier 50 (fee-schedule bilateral indicator 2: its payment "
        "already assumes both sides); remove 50 and bill the service as performed."
    )
    assert _got(changed, [{"procedure_code": "64490", "modifiers": ["26"]}]) == set()
    assert _got(changed, SPLIT) == set()  # no longer bilateral indicator 1


def test_a_code_without_fee_indicators_is_not_judged_on_them() -> None:
    lines = [{"procedure_code": "99999", "modifiers": ["50", "26"]}]
    assert _got(default_table(), lines) == set()


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        (["5O"], "modifier '5O' is not valid (did you mean 50?)"),
        (["kx"], "modifier 'kx' is not valid (did you mean KX?)"),
        (["ABC"], "modifier 'ABC' is not valid;"),
        (["RT", "1", "x9"], "modifiers '1', 'x9' are not valid (did you mean X9?)"),
        (["ABCDEFGHIJ"], "modifier 'ABCDEF...' is not valid;"),
    ],
)
def test_invalid_modifier_message_shows_the_bad_values_and_a_likely_fix(
    bad: list[str], shown: str
) -> None:
    (found,) = _findings(default_table(), [{"procedure_code": "99213", "modifiers": bad}])
    assert found.rule_id == "MODIFIER_INVALID"
    assert found.message.startswith(f"Line 1: {shown}")
    assert found.message.endswith("a modifier is two upper-case characters, such as 50, RT or KX.")


@pytest.mark.parametrize("value", ["50", "59", "00", "RT", "KX", "XS", "F1", "Q5", "1P", "8P"])
def test_well_shaped_modifiers(value: str) -> None:
    lines = [{"procedure_code": "99213", "modifiers": [value]}]
    assert "MODIFIER_INVALID" not in {rule for rule, _ in _got(default_table(), lines)}


@pytest.mark.parametrize("value", ["5O", "5P", "0A", "kx", "Kx", "K", "ABC", "", " 5", "5 "])
def test_badly_shaped_modifiers(value: str) -> None:
    lines = [{"procedure_code": "99213", "modifiers": [value]}]
    assert ("MODIFIER_INVALID", 1) in _got(default_table(), lines)


def test_too_many_and_duplicate_messages() -> None:
    lines = [{"procedure_code": "99213", "modifiers": ["KX", "GA", "KX", "76", "GA"]}]
    by_rule = {f.rule_id: f.message for f in _findings(default_table(), lines)}
    assert by_rule == {
        "MODIFIER_TOO_MANY": (
            "Line 1: 5 modifiers, but a claim line carries at most 4; keep the 4 that affect "
            "payment first (use 99 for multiple modifiers if the payer asks for it) and document "
            "the rest."
        ),
        "MODIFIER_DUPLICATE": (
            "Line 1: modifiers 'KX', 'GA' are repeated on the line; list each modifier once."
        ),
    }


def test_59_with_several_x_modifiers_names_them_all() -> None:
    lines = [{"procedure_code": "64490", "modifiers": ["XE", "59", "XU"]}]
    (found,) = _findings(default_table(), lines)
    assert found.rule_id == "MODIFIER_59_WITH_X"
    assert "modifier 59 is billed together with XE, XU;" in found.message
