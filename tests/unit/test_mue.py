"""Importing the official CMS practitioner MUE file, and judging units by what was imported.

The official files are not shipped, so each test writes a small file in the official layout
(F-MUE-FMT-1/2/3): AMA notice rows first (one a quoted cell spanning lines), then a header whose
first cell holds a line break (`"HCPCS/\\nCPT Code"`), then rows whose adjudication indicator is
text that starts with the digit.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from service.cli import main
from service.engine import evaluate
from service.models.events import Claim
from service.ruletable.importers.mue import MueImportError, mue_release, read_official_mue
from service.ruletable.load import DATA_DIR, RuleTableError
from service.tables import load_table
from tests.unit.casebook import build_claim

NOTICE = (
    "CPT codes, descriptions and other data only are copyright 2025 American Medical "
    "Association.\nAll Rights Reserved. Applicable FARS/HHSARS apply."
)
HEADER = [
    "HCPCS/\nCPT Code",
    "Practitioner Services MUE Values",
    "MUE Adjudication Indicator",
    "MUE Rationale",
]
ROWS = [
    ["64490", "1", "2 Date of Service Edit: Policy", "Code Descriptor / CPT Instruction"],
    ["64491", "1", "2 Date of Service Edit: Policy", "Code Descriptor / CPT Instruction"],
    ["64493", "1", "2 Date of Service Edit: Policy", "Code Descriptor / CPT Instruction"],
    ["20552", "1", "1 Line Edit", "Anatomic Consideration"],
    ["64483", "1", "3 Date of Service Edit: Clinical", "Clinical: Data"],
    ["0213T", "0", "2 Date of Service Edit: Policy", "CMS Policy"],
]
NAME = "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv"


def main_import_mue(argv: list[str]) -> int:
    """`claims-validator rules import-mue ARGV`, run in this process."""
    return main(["rules", "import-mue", *argv])


def official_csv(path: Path, header: list[str] = HEADER, rows: list[list[str]] = ROWS) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([NOTICE])
    writer.writerow([])
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(out.getvalue().encode("cp1252"))
    return path


def claim(payer: str, *lines: dict[str, object]) -> Claim:
    return Claim(**build_claim({"payer_id": payer, "service_lines": list(lines)}))


def units_findings(table_dir: Path, c: Claim) -> list[tuple[int | None, str]]:
    table = load_table(table_dir)
    return [
        (f.line_number, f.message) for f in evaluate(c, table) if f.rule_id == "UNITS_EXCEED_LIMIT"
    ]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "table"
    shutil.copytree(DATA_DIR, directory, ignore=shutil.ignore_patterns("__pycache__"))
    return directory


def test_reads_the_official_csv_layout(tmp_path: Path) -> None:
    rows = read_official_mue(official_csv(tmp_path / NAME))
    assert [(r.code, r.mue, r.mai, r.rationale) for r in rows] == [
        ("0213T", 0, "2", "CMS Policy"),
        ("20552", 1, "1", "Anatomic Consideration"),
        ("64483", 1, "3", "Clinical: Data"),
        ("64490", 1, "2", "Code Descriptor / CPT Instruction"),
        ("64491", 1, "2", "Code Descriptor / CPT Instruction"),
        ("64493", 1, "2", "Code Descriptor / CPT Instruction"),
    ]


def test_reads_the_official_xlsx_layout(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([NOTICE])
    sheet.append([])
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append([int(c) if c.isdigit() else c for c in row])  # numbers as Excel stores them
    path = tmp_path / NAME.replace(".csv", ".xlsx")
    book.save(path)
    assert {(r.code, r.mue, r.mai) for r in read_official_mue(path)} == {
        (r[0], int(r[1]), r[2][0]) for r in ROWS
    }


def test_release_is_the_quarter_of_the_effective_date() -> None:
    assert mue_release(Path(NAME)) == "2026q2"
    assert mue_release(Path("MCR_MUE_PractitionerServices_Eff_10-01-2025.xlsx")) == "2025q4"
    with pytest.raises(MueImportError, match="no `_Eff_MM-DD-YYYY` date"):
        mue_release(Path("mue.csv"))


def test_import_mue_replaces_the_table_limits(
    tmp_path: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = official_csv(tmp_path / NAME)
    assert main_import_mue(["--mue", str(source), "--out", str(out)]) == 0
    assert "MUE table 2026q2 (6 codes from " + NAME in capsys.readouterr().out
    meta = json.loads((out / "mue_source.json").read_text(encoding="utf-8"))
    assert (meta["release"], meta["rows"], meta["source_file"]) == ("2026q2", 6, NAME)
    table = load_table(out)
    assert ".mue-2026q2." in table.version
    assert table.policies is not None
    assert table.policies.mue["64483"].mai == 3
    # 64492 had a descriptor limit in the shipped table; the CMS file replaces the whole table.
    assert "64492" not in table.policies.mue
    found = units_findings(out, claim("ACME", {"procedure_code": "64490", "units": 2}))
    assert len(found) == 1
    assert found[0][0] == 1
    assert f"Limit source: CMS practitioner MUE file {NAME} (2026q2)" in found[0][1]


def test_line_edit_limits_each_line_and_date_edits_sum_the_day(tmp_path: Path, out: Path) -> None:
    assert main_import_mue(["--mue", str(official_csv(tmp_path / NAME)), "--out", str(out)]) == 0
    # MAI 1 (20552): one unit on each of two lines is within the limit; two on one line is not.
    two_lines = claim(
        "ACME", {"procedure_code": "20552"}, {"procedure_code": "20552", "modifiers": ["59"]}
    )
    assert units_findings(out, two_lines) == []
    one_line = claim("ACME", {"procedure_code": "20552", "units": 2})
    assert [n for n, _ in units_findings(out, one_line)] == [1]
    # MAI 3 (64483): two lines of one date are summed; the clinical indicator is named.
    day = claim(
        "ACME",
        {"procedure_code": "64483", "modifiers": ["RT"]},
        {"procedure_code": "64483", "modifiers": ["LT"]},
    )
    [(line, message)] = units_findings(out, day)
    assert line == 1
    assert "2 units on 2025-03-04 (lines 1, 2)" in message
    assert "indicator 3" in message
    # An MUE of 0: any unit is too many, and the message says the code is not payable.
    [(_, message)] = units_findings(out, claim("ACME", {"procedure_code": "0213T"}))
    assert "MUE of 0" in message


def test_the_wrong_mue_table_is_refused(tmp_path: Path, out: Path) -> None:
    header = [HEADER[0], "Outpatient Hospital Services MUE Values", *HEADER[2:]]
    path = official_csv(tmp_path / NAME, header=header)
    with pytest.raises(MueImportError, match=r"Outpatient Hospital.*Practitioner Services file"):
        read_official_mue(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (["64490", "1", "Date of Service Edit", "x"], r"row 5: column MUE Adjudication Indicator"),
        (["64490", "one", "2 Date", "x"], r"row 5: column Practitioner Services MUE Values"),
        (["6449", "1", "2 Date", "x"], r"row 5: column HCPCS/CPT Code: not a HCPCS/CPT code"),
        (ROWS[0], r"row 5: column HCPCS/CPT Code: code 64490 already listed on row 4"),
    ],
)
def test_a_bad_row_is_named_by_row_and_column(tmp_path: Path, row: list[str], message: str) -> None:
    path = official_csv(tmp_path / NAME, rows=[ROWS[0], row])
    with pytest.raises(MueImportError, match=message):
        read_official_mue(path)


def test_a_file_without_the_header_is_refused(
    tmp_path: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / NAME
    path.write_text("code,mue\n64490,1\n", encoding="utf-8")
    assert main_import_mue(["--mue", str(path), "--out", str(out)]) == 1
    assert "no header row with a `HCPCS/CPT Code` cell" in capsys.readouterr().err
    # Nothing was written: the shipped descriptor limits are still there.
    assert "descriptor" in (out / "mue_source.json").read_text(encoding="utf-8")


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_import_mue([]) == 2
    assert main_import_mue(["--mue", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_release_is_required_when_the_name_has_no_date(tmp_path: Path, out: Path) -> None:
    path = official_csv(tmp_path / "mue.csv")
    assert main_import_mue(["--mue", str(path), "--out", str(out)]) == 1
    assert main_import_mue(["--mue", str(path), "--out", str(out), "--release", "2026q3"]) == 0
    assert ".mue-2026q3." in load_table(out).version


def test_a_broken_mue_csv_in_the_table_is_named(out: Path) -> None:
    (out / "mue.csv").write_text(
        "code,mue,mai,rationale\n64490,1,2,x\n64490,1,2,x\n", encoding="utf-8"
    )
    (out / "mue_source.json").write_text(
        (out / "mue_source.json").read_text(encoding="utf-8").replace('"rows": 127', '"rows": 2'),
        encoding="utf-8",
    )
    with pytest.raises(RuleTableError, match=r"^mue\.csv: row 3: field code: code 64490 is listed"):
        load_table(out)
    (out / "mue.csv").write_text("code,mue,mai,rationale\n64490,1,4,x\n", encoding="utf-8")
    with pytest.raises(RuleTableError, match=r"^mue\.csv: row 2: field mai: "):
        load_table(out)
    (out / "mue.csv").write_text("code,mue,mai,rationale\n64490,1,2,x\n", encoding="utf-8")
    with pytest.raises(
        RuleTableError,
        match=r"^mue_source\.json: row 1: field rows: says 2 rows but mue\.csv has 1",
    ):
        load_table(out)
