"""Place of service beyond the data cases: messages, and the curated table as the only authority."""

from __future__ import annotations

import dataclasses
from typing import Any

from service.engine import evaluate
from service.engine.families import place_of_service
from service.models.events import Finding
from service.ruletable.compiled import RuleTable
from service.tables import default_table
from tests.unit.casebook import build_claim, parse


def _findings(table: RuleTable, lines: list[dict[str, Any]]) -> list[Finding]:
    parsed = parse(build_claim({"service_lines": lines}))
    return [f for f in evaluate(parsed, table) if f.rule_id in place_of_service.RULE_IDS]


def test_not_allowed_message_names_the_place_and_the_accepted_places() -> None:
    (found,) = _findings(default_table(), [{"procedure_code": "64490", "place_of_service": "10"}])
    assert found.rule_id == "POS_NOT_ALLOWED"
    assert found.procedure_code == "64490"
    assert found.message == (
        "Line 1: 64490 is not expected at place of service 10 (Telehealth Provided in Patient's "
        "Home); check where it was performed and bill one of the places it is accepted at: "
        "11, 19, 21, 22, 24, 49."
    )
    assert "F-POS-FACET" in found.reference


def test_invalid_message_cuts_long_values() -> None:
    (found,) = _findings(default_table(), [{"place_of_service": "1234567890123"}])
    assert found.rule_id == "POS_INVALID"
    assert found.message.startswith(
        "Line 1: place of service '12345678...' is not in the CMS place-of-service code set; "
    )


def test_allowed_places_come_from_the_table() -> None:
    table = dataclasses.replace(default_table(), pos_allowed={"99213": frozenset({"11"})})
    got = {
        (f.rule_id, f.line_number)
        for f in _findings(
            table,
            [
                {"procedure_code": "99213", "place_of_service": "10"},
                {"procedure_code": "64490", "place_of_service": "02"},  # now unrestricted
            ],
        )
    }
    assert got == {("POS_UNLIKELY", 1)}  # no cited rule for 99213 at 10: a heuristic warning


def test_the_code_set_comes_from_the_table() -> None:
    table = dataclasses.replace(default_table(), pos_codes={"11": "Office"})
    lines = [{"procedure_code": "99213", "place_of_service": "22"}]
    assert [(f.rule_id, f.line_number) for f in _findings(table, lines)] == [("POS_INVALID", 1)]
