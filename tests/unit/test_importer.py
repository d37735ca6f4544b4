"""The importer turns CMS-shaped source files into the shipped tables, deterministically.

Sources here are small files built in the layout of the real CMS releases (AMA notice row and
header row in the AOC workbook, a header split over several rows in the RVU file, with the
description column the importer must never copy); the official files are covered by
test_ruletable_reference.py.
"""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook

from service.cli import main
from service.ruletable.importers.aoc import aoc_quarter, julian_to_date
from service.ruletable.importers.common import ImportFileError
from service.ruletable.importers.rebuild import run_import
from service.ruletable.importers.rvu import rvu_release
from service.ruletable.load import DATA_DIR

RULES = {"TINY_RULE"}


def main_import(argv: list[str]) -> int:
    """`claims-validator rules import ARGV`, run in this process."""
    return main(["rules", "import", *argv])

AOC_HEADER = [
    "AOC_Edit_Type", "Add-On_Code", "AOC_DelDT", "Primary_Code", "Primary_Code_DelDT",
    "AOC_Edit_EffDT", "AOC_Edit_DelDT", "Special_Instruction_Notes",
]
AOC_ROWS: list[list[str | None]] = [
    ["2", "0054T", None, "CCCCC", None, "2013091", None, "Contractor Defined Primary Codes"],
    ["1", "64491", None, "64490", None, "2013091", None, None],
    ["1", "64494", None, "64493", None, "2013091", None, None],
    ["1", "64494", None, "64490", None, "2023001", None, None],
    ["1", "37222", "2025365", "37220", None, "2013091", "2019365", None],
    ["1", "64462", None, "64461", None, "2016001", None, None],
]
RVU_LINES = [
    ",,2025 National Physician Fee Schedule Relative Value File January Release,,,,,,,,,,,,,,,,",
    ",,CPT codes and descriptions only are copyright 2024 AMA.,,,,,,,,,,,,,,,,",
    ",, ,,,,,,,,,,,,,,,,",
    ",,,,NOT USED,,,,,,,,,,,,,,",
    ",,,,FOR,,,NON-FAC,,FACILITY ,,,,,,,,,",
    ",,,STATUS,MEDICARE ,WORK,NON-FAC,NA,FACILITY,NA,MP,NON-FACILITY,FACILITY,"
    "PCTC,GLOB,PRE,MULT,BILAT,ASST",
    "HCPCS,MOD,DESCRIPTION,CODE,PAYMENT,RVU,PE RVU,INDICATOR,PE RVU,INDICATOR,RVU,TOTAL,TOTAL,"
    "IND,DAYS,OP,PROC,SURG,SURG",
    "100,,Anesth salivary gland,J,,0,0,,0,,0,0,0,9,XXX,0,9,9,9",
    "20552,,Inj trigger point 1/2 muscl,A,,0.66,0.91,,0.43,,0.07,1.57,1.09,0,0,0,2,0,1",
    "37220,,Iliac revasc,A,,7.9,0,,0,,0,0,0,0,0,0,2,1,1",
    "37222,,Iliac revasc add-on,A,,3,0,,0,,0,0,0,0,ZZZ,0,0,1,1",
    "64461,,Pvb thoracic single inj site,A,,1.75,1.66,,0.62,,0.14,3.97,2.31,0,0,0,2,1,1",
    "64462,,Pvb thoracic 2nd+ inj site,A,,1.10,1.0,,0.5,,0.1,2.11,1.43,0,ZZZ,0,0,1,1",
    "64463,,Pvb thoracic cont infus,A,,1.9,4.0,,0.4,,0.2,6.66,2.42,0,0,0,2,1,1",
    "64490,26,Inj paravert f jnt c/t 1 lev,A,,1.82,0,,0,,0,0,0,0,0,0,2,1,2",
    "64490,,Inj paravert f jnt c/t 1 lev,A,,1.82,3.66,,1.06,,0.28,5.76,3.16,0,0,0,2,1,2",
    "64491,,Inj paravert f jnt c/t 2 lev,A,,1.16,1.64,,0.49,,0.13,2.93,1.78,0,ZZZ,0,0,1,2",
    "64493,,Inj paravert f jnt l/s 1 lev,A,,1.52,3.52,,0.93,,0.27,5.32,2.73,0,0,0,2,1,2",
    "64494,,Inj paravert f jnt l/s 2 lev,A,,1,1.6,,0.4,,0.1,2.72,1.52,0,ZZZ,0,0,1,2",
    "64633,,Destroy cerv/thor facet jnt,A,,3.4,8.7,,1.6,,0.3,12.89,5.77,0,10,0,2,1,1",
    "86153,26,Cell enumeration phys interp,A,,0.69,0.27,,0.27,,0.04,1.0,1.0,6,XXX,0,0,0,0",
    "86153,TC,Cell enumeration tech,C,,0,0,,0,,0,0,0,6,XXX,0,0,0,0",
    "\x1a,,",
]
POS_CSV = (
    "code,name,medicare_pfs_rate\n"
    "02,Telehealth Provided Other than in Patient's Home,facility\n"
    "11,Office,non-facility\n"
    "24,Ambulatory Surgical Center,facility\n"
    "66,Programs of All-Inclusive Care for the Elderly (PACE) Center,\n"
    "22,On Campus-Outpatient Hospital,facility\n"
)
POS_ALLOWED = """\
curated_version: 3
place_sets:
  - name: spine
    places: ["11", "22", "24"]
    reason: test set
    reference: F-TEST
procedures:
  - set: spine
    codes: ["64490-64494", "64461-64463"]
"""
TINY_RULES = """\
- id: TINY_RULE
  severity: warning
  summary: Test rule.
  action: Nothing.
  reference: F-TEST
"""


def _workbook(path: Path, rows: list[list[str | None]], *, notice: bool = True) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "AOC_V2026Q2-MCR_xlsx"
    if notice:
        sheet.append(["Current Procedural Terminology (CPT) codes ... copyright AMA"])
    sheet.append(AOC_HEADER)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "cms"
    folder.mkdir()
    rvu = folder / "PPRRVU25_JAN1.csv"
    rvu.write_text("\n".join(RVU_LINES) + "\n", encoding="utf-8")
    pos = folder / "place-of-service-2024.csv"
    pos.write_text(POS_CSV, encoding="utf-8")
    return {"aoc": _workbook(folder / "AOC_V2026Q2-MCR.xlsx", AOC_ROWS), "rvu": rvu, "pos": pos}


def _out(tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    (out / "rules").mkdir(parents=True)
    (out / "rules" / "tiny.yaml").write_text(TINY_RULES, encoding="utf-8")
    (out / "pos_allowed.yaml").write_text(POS_ALLOWED, encoding="utf-8")
    return out


def _import(sources: dict[str, Path], out: Path) -> None:
    run_import(sources["aoc"], sources["rvu"], sources["pos"], out, rule_ids=RULES)


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_julian_dates() -> None:
    assert julian_to_date("2013091") == date(2013, 4, 1)
    assert julian_to_date("2015001") == date(2015, 1, 1)
    assert julian_to_date("2019365") == date(2019, 12, 31)
    assert julian_to_date("2020366") == date(2020, 12, 31)
    assert julian_to_date("2023181") == date(2023, 6, 30)
    assert julian_to_date("2024091") == date(2024, 3, 31)
    for bad in ("2019366", "2013000", "201309", "2013-04-01", "20130911"):
        with pytest.raises(ValueError, match="Julian"):
            julian_to_date(bad)


def test_release_labels_from_file_names() -> None:
    assert aoc_quarter(Path("AOC_V2026Q2-MCR.xlsx")) == "2026Q2"
    assert aoc_quarter(Path("/x/AOC_V2025Q4_01-MCR.xlsx")) == "2025Q4"
    assert rvu_release(Path("PPRRVU25_JAN1.csv")) == "2025-JAN"
    assert rvu_release(Path("PPRRVU2026_Jul.csv")) == "2026-JUL"
    with pytest.raises(ImportFileError, match=r"^aoc\.xlsx: row -: column -: cannot tell"):
        aoc_quarter(Path("aoc.xlsx"))


def test_import_writes_the_tables(sources: dict[str, Path], tmp_path: Path) -> None:
    out = _out(tmp_path, "table")
    report = run_import(sources["aoc"], sources["rvu"], sources["pos"], out, rule_ids=RULES)

    assert _rows(out / "aoc.csv") == [
        ["add_on_code", "edit_type", "aoc_deleted", "primary_code", "primary_deleted",
         "effective", "deleted", "note"],
        ["0054T", "2", "", "CCCCC", "", "2013-04-01", "", "Contractor Defined Primary Codes"],
        ["64491", "1", "", "64490", "", "2013-04-01", "", ""],
        ["64494", "1", "", "64493", "", "2013-04-01", "", ""],
        ["64494", "1", "", "64490", "", "2023-01-01", "", ""],
        ["37222", "1", "2025-12-31", "37220", "", "2013-04-01", "2019-12-31", ""],
        ["64462", "1", "", "64461", "", "2016-01-01", "", ""],
    ]
    assert _rows(out / "fee_indicators.csv") == [
        ["code", "status", "global_days", "mult_proc", "bilateral", "pctc"],
        ["00100", "J", "XXX", "9", "9", "9"],
        ["20552", "A", "000", "2", "0", "0"],
        ["37220", "A", "000", "2", "1", "0"],
        ["37222", "A", "ZZZ", "0", "1", "0"],
        ["64461", "A", "000", "2", "1", "0"],
        ["64462", "A", "ZZZ", "0", "1", "0"],
        ["64463", "A", "000", "2", "1", "0"],
        ["64490", "A", "000", "2", "1", "0"],  # the row without a modifier, not the 26 row
        ["64491", "A", "ZZZ", "0", "1", "0"],
        ["64493", "A", "000", "2", "1", "0"],
        ["64494", "A", "ZZZ", "0", "1", "0"],
        ["64633", "A", "010", "2", "1", "0"],
        ["86153", "A", "XXX", "0", "0", "6"],  # only modifier rows: the first one
    ]
    text = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    for description in (b"Inj paravert", b"Anesth salivary", b"Cell enumeration", b"DESCRIPTION"):
        assert description not in text
    assert _rows(out / "place_of_service.csv")[1:] == [
        ["02", "Telehealth Provided Other than in Patient's Home", "facility"],
        ["11", "Office", "non-facility"],
        ["22", "On Campus-Outpatient Hospital", "facility"],
        ["24", "Ambulatory Surgical Center", "facility"],
        ["66", "Programs of All-Inclusive Care for the Elderly (PACE) Center", ""],
    ]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["version"] == "aoc-2026q2.pfs-2025jan.pos-2024.curated-3"
    assert manifest["tables"]["aoc"]["rows"] == 6
    assert manifest["tables"]["aoc"]["source_file"] == "AOC_V2026Q2-MCR.xlsx"
    assert manifest["tables"]["fee_indicators"]["release"] == "2025-JAN"
    assert manifest["tables"]["fee_indicators"]["rows"] == 13
    assert len(manifest["tables"]["place_of_service"]["source_sha256"]) == 64

    table = report.table
    assert table.version == (
        manifest["version"]
        + ".icd10cm-2021jan-2023oct-2025apr-2026apr"
        + ".mue-descriptor.payers-4.regions-1.visits-1.freq-1"
    )
    assert table.addons["64494"].primaries_on(date(2023, 1, 1)) == {"64493", "64490"}
    assert table.addons["0054T"].contractor_defined
    assert table.pos_allowed["64491"] == {"11", "22", "24"}
    assert "64492" not in table.pos_allowed  # not in the fee table: skipped inside the range
    assert report.imported == ("aoc", "fee_indicators", "place_of_service")
    assert "aoc.csv: 6 rows, release 2026Q2" in report.summary()


def test_import_is_deterministic(sources: dict[str, Path], tmp_path: Path) -> None:
    first, second = _out(tmp_path, "first"), _out(tmp_path, "second")
    _import(sources, first)
    _import(sources, second)
    snapshot = {p.relative_to(first): p.read_bytes() for p in sorted(first.rglob("*.*"))}
    assert snapshot == {p.relative_to(second): p.read_bytes() for p in sorted(second.rglob("*.*"))}
    _import(sources, first)  # again, over its own output
    assert snapshot == {p.relative_to(first): p.read_bytes() for p in sorted(first.rglob("*.*"))}


def test_import_of_one_file_keeps_the_other_tables(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    out = _out(tmp_path, "table")
    _import(sources, out)
    before = {name: (out / name).read_bytes() for name in ("aoc.csv", "fee_indicators.csv")}
    manifest_before = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    pos = sources["pos"].with_name("place-of-service-2025.csv")
    pos.write_text(POS_CSV + "81,Independent Laboratory,non-facility\n", encoding="utf-8")

    report = run_import(None, None, pos, out, rule_ids=RULES)

    assert {name: (out / name).read_bytes() for name in before} == before
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["tables"]["aoc"] == manifest_before["tables"]["aoc"]
    assert manifest["tables"]["place_of_service"]["rows"] == 6
    assert manifest["version"] == "aoc-2026q2.pfs-2025jan.pos-2025.curated-3"
    assert report.imported == ("place_of_service",)
    assert report.table.pos_codes["81"] == "Independent Laboratory"


def test_cli_prints_a_summary(
    sources: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "table"
    shutil.copytree(DATA_DIR, out, ignore=shutil.ignore_patterns("__pycache__"))
    code = main_import(["--aoc", str(sources["aoc"]), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "aoc.csv: 6 rows, release 2026Q2 from AOC_V2026Q2-MCR.xlsx (imported)" in printed
    assert "fee_indicators.csv: 16647 rows, release 2025-JAN" in printed  # kept
    assert "(kept)" in printed


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (["1", "64491", None, "64490", None, "2013400", None, None],
         "AOC_V2026Q2-MCR.xlsx: row 4: column AOC_Edit_EffDT: not a Julian date"),
        (["4", "64491", None, "64490", None, "2013091", None, None],
         "AOC_V2026Q2-MCR.xlsx: row 4: column AOC_Edit_Type: expected 1, 2 or 3, got '4'"),
        (["1", "64-91", None, "64490", None, "2013091", None, None],
         "AOC_V2026Q2-MCR.xlsx: row 4: column Add-On_Code: not a HCPCS/CPT code: '64-91'"),
        (["1", "64491", None, "64490", None, None, None, None],
         "AOC_V2026Q2-MCR.xlsx: row 4: column AOC_Edit_EffDT: missing date"),
    ],
)
def test_cli_bad_workbook_exits_1_naming_file_row_column(
    row: list[str | None], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "table"
    shutil.copytree(DATA_DIR, out, ignore=shutil.ignore_patterns("__pycache__"))
    before = {p: p.read_bytes() for p in out.rglob("*.*")}
    workbook = _workbook(tmp_path / "AOC_V2026Q2-MCR.xlsx", [AOC_ROWS[0], row])

    code = main_import(["--aoc", str(workbook), "--out", str(out)])

    assert code == 1
    assert f"claims-validator rules import: error: {expected}" in capsys.readouterr().err
    # A failed import changes nothing.
    assert {p: p.read_bytes() for p in out.rglob("*.*")} == before


def test_bad_rvu_header_names_the_column(
    sources: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rvu = sources["rvu"]
    rvu.write_text(rvu.read_text(encoding="utf-8").replace("GLOB", "GLOBAL"), encoding="utf-8")
    code = main_import(["--rvu", str(rvu), "--out", str(_out(tmp_path, "table"))])
    assert code == 1
    assert "PPRRVU25_JAN1.csv: row 7: column GLOB DAYS: column not found in the header" in (
        capsys.readouterr().err
    )


def test_bad_rvu_value_names_row_and_column(sources: dict[str, Path], tmp_path: Path) -> None:
    rvu = sources["rvu"]
    rvu.write_text(
        rvu.read_text(encoding="utf-8").replace("5.76,3.16,0,0,0,2,1", "5.76,3.16,0,0,0,2,B"),
        encoding="utf-8",
    )
    with pytest.raises(
        ImportFileError,
        match=r"^PPRRVU25_JAN1\.csv: row 16: column BILAT SURG: expected a digit, got 'B'$",
    ):
        run_import(None, rvu, None, _out(tmp_path, "table"), rule_ids=RULES)


def test_workbook_without_header(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["something else"])
    book.save(tmp_path / "AOC_V2026Q2-MCR.xlsx")
    with pytest.raises(
        ImportFileError, match=r"^AOC_V2026Q2-MCR\.xlsx: row -: column -: no header"
    ):
        run_import(
            tmp_path / "AOC_V2026Q2-MCR.xlsx", None, None, _out(tmp_path, "t"), rule_ids=RULES
        )


def test_cli_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_import(["--bogus"]) == 2
    assert main_import(["--aoc", str(tmp_path / "missing.xlsx")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_pos_release_must_be_given_when_the_name_has_none(
    sources: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _out(tmp_path, "table")
    _import(sources, out)
    renamed = sources["pos"].with_name("pos.csv")
    renamed.write_text(POS_CSV + "81,Independent Laboratory,non-facility\n", encoding="utf-8")
    assert main_import(["--pos", str(renamed), "--out", str(out)]) == 1
    assert "pos.csv: row -: column -: cannot tell the code-set release" in capsys.readouterr().err
    report = run_import(None, None, renamed, out, pos_release_label="2026", rule_ids=RULES)
    assert report.table.version == (
        "aoc-2026q2.pfs-2025jan.pos-2026.curated-3.icd10cm-2021jan-2023oct-2025apr-2026apr.mue-descriptor.payers-4.regions-1.visits-1.freq-1"
    )
