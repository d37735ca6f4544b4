"""Add-on pairing beyond the data cases: what the biller reads, and tables the shipped data lacks.

The cases in `cases/pairing.yaml` fix which lines are flagged; these tests fix the message text,
the verdict a warning-only claim gets, and behaviour that needs a purpose-built table (an add-on
code deleted while its pairings are still listed, chains through contractor-defined primaries).
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.engine import evaluate
from service.engine.families import pairing
from service.models.events import ClaimSubmitted, Finding
from service.ruletable.compiled import AddonCode, AddonPairing, RuleTable
from service.ruletable.load import DATA_DIR
from service.tables import default_table, load_table
from service.verdicts import judge
from tests.unit.casebook import build_claim, parse

DAY = timedelta(days=1)


def _findings(table: RuleTable, lines: list[dict[str, Any]]) -> list[Finding]:
    claim = parse(build_claim({"service_lines": lines}))
    return [f for f in evaluate(claim, table) if f.rule_id in pairing.RULE_IDS]


def _got(table: RuleTable, lines: list[dict[str, Any]]) -> set[tuple[str, int | None]]:
    return {(f.rule_id, f.line_number) for f in _findings(table, lines)}


def _with_addons(*addons: AddonCode) -> RuleTable:
    table = default_table()
    return dataclasses.replace(table, addons={**table.addons, **{a.code: a for a in addons}})


def _is_addon_on(addon: AddonCode, on: date) -> bool:
    """The AOC file's definition, row by row: the code is valid and some edit row is in effect."""
    if addon.deleted is not None and on > addon.deleted:
        return False
    contractor = (
        any(start <= on <= end for start, end, _ in addon.contractor_rows)
        if addon.contractor_rows
        else addon.contractor_defined
    )
    return contractor or any(
        p.effective <= on and (p.deleted is None or on <= p.deleted) for p in addon.pairings
    )


def _primaries_on(addon: AddonCode, on: date) -> set[str]:
    """The AOC file's definition: the pairing row and the primary code both in effect."""
    return {
        p.primary for p in addon.pairings
        if p.effective <= on and (p.deleted is None or on <= p.deleted)
        and (p.primary_deleted is None or on <= p.primary_deleted)
    }


def test_compiled_addons_agree_with_the_aoc_rows_on_every_edge_date() -> None:
    """The hot-path layout of each add-on answers exactly like its rows, on every boundary."""
    table = default_table()
    for code, addon in table.addons.items():
        edges = {date(2013, 1, 1), date(2025, 3, 4)}
        for p in addon.pairings:
            for d in (p.effective, p.deleted, p.primary_deleted, addon.deleted):
                if d is not None:
                    edges |= {d - DAY, d, d + DAY}
        for start, end, _ in addon.contractor_rows:
            edges |= {start - DAY, start, end, *((end + DAY,) if end < date.max else ())}
        for on in edges:
            assert addon.is_addon_on(on) == _is_addon_on(addon, on), (code, on)
            expected = frozenset(_primaries_on(addon, on)) if _is_addon_on(addon, on) else None
            assert addon.edit_on(on) == expected, (code, on)
            listed = {p for p in addon.windows if addon.lists(p, on)}
            assert listed == _primaries_on(addon, on), (code, on)
            assert addon.primaries_on(on) == _primaries_on(addon, on), (code, on)


def test_missing_primary_message_names_line_code_date_practitioner_and_fix() -> None:
    (found,) = _findings(default_table(), [{"procedure_code": "64491"}])
    assert found.severity == "error"
    assert found.procedure_code == "64491"
    assert found.message == (
        "Line 1: add-on 64491 has no primary on this claim for 2025-03-04 by practitioner "
        "1234567893; bill a listed primary (64490) on the same date by the same practitioner, "
        "or remove the add-on."
    )
    assert found.reference.startswith("F-AOC-1")
    assert "AOC_V2026Q2-MCR.xlsx" in found.reference


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (
            [
                {"procedure_code": "64490", "service_date": "2025-03-03"},
                {"procedure_code": "64491"},
            ],
            "(64490 on line 1 is dated 2025-03-03)",
        ),
        (
            [
                {"procedure_code": "64490", "rendering_provider_npi": "1245319599"},
                {"procedure_code": "64491"},
            ],
            "(64490 on line 1 is by practitioner 1245319599)",
        ),
        (
            [
                {"procedure_code": "64490", "service_date": "2022-12-31"},
                {"procedure_code": "64494", "service_date": "2022-12-31"},
            ],
            "(64490 on line 1 counts as a primary of 64494 only from 2023-01-01)",
        ),
        (
            [{"procedure_code": "64491"}, {"procedure_code": "64492"}],
            "(64491 on line 1 is itself an add-on without its primary)",
        ),
    ],
    ids=["other date", "other practitioner", "before effective date", "chain"],
)
def test_missing_primary_message_says_why_the_primary_on_the_claim_does_not_count(
    lines: list[dict[str, Any]], reason: str
) -> None:
    last = _findings(default_table(), lines)[-1]
    assert last.line_number == 2
    assert reason in last.message


def test_long_primary_lists_are_shortened_in_the_message() -> None:
    (found,) = _findings(default_table(), [{"procedure_code": "77003"}])
    assert "bill a listed primary (61050, 61055, 62267, 62273, 62280, 62281 or one of 8 more)" in (
        found.message
    )
    # 62270 and 62272 stopped being primaries of 77003 after 2019-12-31; before that they count.
    (old,) = _findings(default_table(), [{"procedure_code": "77003", "service_date": "2019-06-03"}])
    assert "(61050, 61055, 62267, 62270, 62272, 62273 or one of 9 more)" in old.message


def test_unlisted_primary_warning_names_both_lines_and_the_listed_primaries() -> None:
    (found,) = _findings(
        default_table(), [{"procedure_code": "64490"}, {"procedure_code": "64727"}]
    )
    assert found.rule_id == "ADDON_PRIMARY_UNLISTED"
    assert found.severity == "warning"
    assert found.message.startswith(
        "Line 2: add-on 64727 (AOC Type 3) is billed with 64490 on line 1, which is not a "
        "CMS-listed primary (listed: 64702, 64704, 64708, 64712, 64713, 64714 or one of 6 more); "
        "confirm the payer accepts 64490 as its primary"
    )


def test_a_claim_whose_only_finding_is_the_unlisted_primary_warning_is_accepted() -> None:
    claim = build_claim(
        {"service_lines": [{"procedure_code": "27447"}, {"procedure_code": "0054T"}]}
    )
    event = ClaimSubmitted.model_validate(
        {
            "event_id": "evt-pairing-1",
            "event_type": "claim.submitted",
            "schema_version": 1,
            "occurred_at": "2025-03-04T15:02:11Z",
            "claim": claim,
        }
    )
    verdict = judge(event, default_table(), now=datetime(2025, 3, 4, 16, 0, tzinfo=UTC))
    assert verdict.verdict == "accepted"
    assert [(f.rule_id, f.severity, f.line_number) for f in verdict.findings] == [
        ("ADDON_PRIMARY_UNLISTED", "warning", 2)
    ]


def test_a_deleted_addon_code_is_no_pairing_edit_and_counts_as_a_procedure() -> None:
    """After AOC_DelDT the code is an ordinary line, even while its pairing rows remain."""
    shipped = default_table().addons["64491"]
    table = _with_addons(dataclasses.replace(shipped, deleted=date(2025, 1, 31)))
    assert _got(table, [{"procedure_code": "64491", "service_date": "2025-01-31"}]) == {
        ("ADDON_WITHOUT_PRIMARY", 1)
    }
    assert _got(table, [{"procedure_code": "64491", "service_date": "2025-02-01"}]) == set()
    # As an ordinary procedure it can be the "other procedure" of a Type 2 add-on ...
    assert _got(table, [{"procedure_code": "64491"}, {"procedure_code": "0054T"}]) == {
        ("ADDON_PRIMARY_UNLISTED", 2)
    }
    # ... and modifier 51 on it is no longer modifier 51 on an add-on.
    lines = [{"procedure_code": "64491", "modifiers": ["51"]}]
    claim = parse(build_claim({"service_lines": lines}))
    assert "MODIFIER_51_ON_ADDON" not in {f.rule_id for f in evaluate(claim, table)}


def test_a_type3_addon_whose_listed_primary_is_supported_later_gets_no_warning() -> None:
    """Contractor-defined support is provisional: a listed primary found later replaces it."""
    since = date(2013, 4, 1)
    table = _with_addons(
        # 9990T: Type 3, lists the Type 2 add-on 9991T as its primary.
        AddonCode("9990T", 3, None, (AddonPairing("9991T", since, None, None),), True),
        AddonCode("9991T", 2, None, (), True),
    )
    lines = [{"procedure_code": "9990T"}, {"procedure_code": "9991T"}, {"procedure_code": "27447"}]
    # 9991T is accepted with 27447 (warning); 9990T then has its listed primary 9991T: no warning.
    assert _got(table, lines) == {("ADDON_PRIMARY_UNLISTED", 2)}
    # Without 99213 neither has anything to stand on.
    assert _got(table, lines[:2]) == {("ADDON_WITHOUT_PRIMARY", 1), ("ADDON_WITHOUT_PRIMARY", 2)}


def test_a_line_never_supports_itself_even_if_listed_as_its_own_primary() -> None:
    since = date(2013, 4, 1)
    table = _with_addons(
        AddonCode("9992T", 1, None, (AddonPairing("9992T", since, None, None),), False)
    )
    assert _got(table, [{"procedure_code": "9992T"}]) == {("ADDON_WITHOUT_PRIMARY", 1)}
    # A second line of the same code is still an add-on without support: no bootstrapping.
    assert _got(table, [{"procedure_code": "9992T"}, {"procedure_code": "9992T"}]) == {
        ("ADDON_WITHOUT_PRIMARY", 1),
        ("ADDON_WITHOUT_PRIMARY", 2),
    }


def test_the_claim_level_rendering_provider_is_used_when_lines_have_none() -> None:
    claim = build_claim(
        {
            "rendering_provider": {"npi": "1245319599"},
            "service_lines": [
                {"procedure_code": "64490"},
                {"procedure_code": "64491", "rendering_provider_npi": "1245319599"},
            ],
        }
    )
    found = evaluate(parse(claim), default_table())
    assert [f for f in found if f.rule_id in pairing.RULE_IDS] == []


def test_a_payer_without_aoc_edits_gets_no_pairing_finding(tmp_path: Path) -> None:
    """`national_edits.aoc: false` in payers.yaml turns the add-on edits off for that payer only."""
    directory = tmp_path / "data"
    shutil.copytree(DATA_DIR, directory, ignore=shutil.ignore_patterns("__pycache__"))
    payers_yaml = directory / "payers.yaml"
    text = payers_yaml.read_text(encoding="utf-8")
    on = "  UHC:\n    name: UnitedHealthcare\n    national_edits: {aoc: true, mue: true}"
    assert on in text
    payers_yaml.write_text(text.replace(on, on.replace("aoc: true", "aoc: false")), "utf-8")
    table = load_table(directory)
    assert table.policies is not None
    assert not table.policies.payer("UHC").aoc_edits

    def pairing_found(payer: str, lines: list[dict[str, Any]]) -> set[tuple[str, int | None]]:
        claim = parse(build_claim({"payer_id": payer, "service_lines": lines}))
        return {(f.rule_id, f.line_number) for f in evaluate(claim, table)
                if f.rule_id in pairing.RULE_IDS}

    alone = [{"procedure_code": "64491"}]
    unlisted = [{"procedure_code": "64490"}, {"procedure_code": "64727"}]
    assert pairing_found("UHC", alone) == set()
    assert pairing_found("UHC", unlisted) == set()
    # Every other payer, configured or not, keeps the national edits.
    assert pairing_found("AETNA", alone) == {("ADDON_WITHOUT_PRIMARY", 1)}
    assert pairing_found("ACME", unlisted) == {("ADDON_PRIMARY_UNLISTED", 2)}
    # Only the pairing family reads the switch: 51 on an add-on is still reported for UHC.
    claim = parse(build_claim({"payer_id": "UHC", "service_lines": [
        {"procedure_code": "64490"}, {"procedure_code": "64491", "modifiers": ["51"]}]}))
    assert ("MODIFIER_51_ON_ADDON", 2) in {(f.rule_id, f.line_number)
                                            for f in evaluate(claim, table)}
