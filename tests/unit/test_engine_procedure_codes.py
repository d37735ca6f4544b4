"""Procedure code shape beyond the data cases: the accepted shapes, hints, and the shipped codes."""

from __future__ import annotations

import pytest

from service.engine import evaluate
from service.engine.families.procedure_codes import is_procedure_code
from service.tables import default_table
from tests.unit.casebook import build_claim, parse


@pytest.mark.parametrize(
    "code",
    [
        "64490",
        "01991",
        "99213",
        "0001F",
        "0213T",
        "0001U",
        "0001A",
        "0002M",
        "G0500",
        "A0021",
        "V2020",
        "D0120",
    ],
)
def test_accepted_shapes(code: str) -> None:
    assert is_procedure_code(code)


@pytest.mark.parametrize(
    "code",
    [
        "6449",
        "644900",
        "6449O",
        "g0500",
        "W1234",
        "Z9999",
        "0213X",
        "64490-50",
        "G05OO",
        "64490 ",
        "ABCDE",
        "00000F",
    ],
)
def test_rejected_shapes(code: str) -> None:
    assert not is_procedure_code(code)


def test_every_code_the_shipped_table_names_has_an_accepted_shape() -> None:
    """The shape rule never rejects a code the fee schedule, AOC file or curated table knows."""
    table = default_table()
    named = {*table.fee, *table.addons, *table.pos_allowed}
    named |= {p.primary for a in table.addons.values() for p in a.pairings}
    assert sorted(c for c in named if not is_procedure_code(c)) == []


def _message(code: str) -> str:
    claim = parse(build_claim({"service_lines": [{"procedure_code": code}]}))
    findings = evaluate(claim, default_table())
    (found,) = [f for f in findings if f.rule_id == "PROCEDURE_CODE_INVALID"]
    assert found.line_number == 1
    return found.message


GLUED = "(a modifier is attached to the code: bill 64490 with the modifier separately)"


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("g0500", "(use upper case: G0500)"),
        ("6449O", "(letter O instead of zero? 64490)"),
        ("64490-50", GLUED),
        ("64490 RT", GLUED),
    ],
)
def test_message_hints_at_the_likely_slip(code: str, hint: str) -> None:
    assert f"is not a CPT or HCPCS code {hint};" in _message(code)


def test_message_says_what_a_code_looks_like_and_cuts_long_values() -> None:
    assert _message("PATIENT-NAME-GOES-HERE") == (
        "Line 1: procedure code 'PATIENT-...' is not a CPT or HCPCS code; enter the "
        "five-character code (5 digits, 4 digits + a letter A/F/M/T/U, or a letter A-V + 4 "
        "digits) and put modifiers in the modifier fields."
    )


def test_a_well_shaped_code_unknown_to_the_table_is_not_flagged() -> None:
    claim = parse(build_claim({"service_lines": [{"procedure_code": "99999"}]}))
    assert "PROCEDURE_CODE_INVALID" not in {f.rule_id for f in evaluate(claim, default_table())}
