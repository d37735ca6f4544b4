"""What every finding of the core families looks like to a biller, and what the catalogue cites.

Runs every data case of the core families through the engine and checks the findings' shape:
the message starts with the line it is about, says what to do, and never carries patient data;
severity and reference come from the catalogue, whose entries cite a fact ID or a CMS source and
never AMA CPT descriptor text.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import yaml

from service.engine import FAMILIES, evaluate
from service.ruletable.load import DATA_DIR
from service.tables import default_table
from tests.unit.casebook import BASE_CLAIM, Case, load_cases, parse

CORE = ("procedure_codes", "pairing", "place_of_service", "modifiers")
CORE_RULES = {name: ids for name, ids, _ in FAMILIES if name in CORE}
CASES = [c for c in load_cases() if c.family in CORE]
FIRING = [c for c in CASES if c.expect]
"""The cases with findings to look at; the quiet ones are asserted quiet by test_rule_cases."""
RVU_CSV = (Path(__file__).parents[2] / "../shared/reference/cms/PPRRVU25_JAN1.csv").resolve()


@pytest.mark.parametrize("case", FIRING, ids=[f"{c.family}: {c.name}" for c in FIRING])
def test_core_findings_speak_about_a_line_and_carry_no_patient_data(case: Case) -> None:
    table = default_table()
    claim = dict(case.claim)
    claim["patient"] = {"member_id": "ZQ9MEMBER77", "birth_date": "1951-07-14"}
    core_ids = set().union(*CORE_RULES.values())
    core = [f for f in evaluate(parse(claim), table) if f.rule_id in core_ids]
    assert core, "the case gives no core finding to check"
    for found in core:
        info = table.rules[found.rule_id]
        assert (found.severity, found.reference) == (info.severity, info.reference)
        assert found.line_number is not None
        assert found.message.startswith(f"Line {found.line_number}: ")
        assert found.message.endswith(".")
        assert ";" in found.message  # what is wrong; what to do
        for secret in ("ZQ9MEMBER77", "1951-07-14", "1951"):
            assert secret not in found.message


def test_base_claim_patient_is_what_the_cases_use() -> None:
    """The check above swaps the patient; the swap must stay meaningful if the base changes."""
    assert set(BASE_CLAIM["patient"]) == {"member_id", "birth_date"}


def test_each_core_rule_lives_in_its_family_catalogue_and_cites_its_source() -> None:
    table = default_table()
    for family, ids in CORE_RULES.items():
        entries = yaml.safe_load((DATA_DIR / "rules" / f"{family}.yaml").read_text())
        assert {e["id"] for e in entries} == set(ids), family
        for rule_id in ids:
            info = table.rules[rule_id]
            assert info.family == family
            assert re.search(r"\bF-[A-Z0-9-]+\b|\.xlsx|\.csv|X12", info.reference), rule_id


def test_structure_rules_are_the_decoder_and_verdict_ones() -> None:
    entries = yaml.safe_load((DATA_DIR / "rules" / "structure.yaml").read_text())
    assert [e["id"] for e in entries] == ["CLAIM_MALFORMED", "FINDINGS_TRUNCATED"]
    assert default_table().rules["CLAIM_MALFORMED"].severity == "error"
    assert default_table().rules["FINDINGS_TRUNCATED"].severity == "warning"


@pytest.mark.reference
@pytest.mark.skipif(not RVU_CSV.is_file(), reason="official CMS RVU file not present (../shared)")
def test_core_catalogue_holds_no_ama_descriptor_text() -> None:
    with RVU_CSV.open(newline="", encoding="utf-8", errors="replace") as handle:
        rows = list(csv.reader(handle))[10:]
    descriptions = {r[2].strip().lower() for r in rows if len(r) > 2 and len(r[2].strip()) >= 12}
    assert len(descriptions) > 1000
    for family in (*CORE, "structure"):
        text = (DATA_DIR / "rules" / f"{family}.yaml").read_text().lower()
        found = sorted(d for d in descriptions if d in text)
        assert found == [], family
