"""The shipped tables agree with the official CMS files in ../shared, when they are present.

These tests read the official files independently of the importer (fixed column positions and
`strptime("%Y%j")` for the Julian dates) and compare samples with the shipped data, and check
that re-importing the official files reproduces the shipped files byte for byte.
"""

from __future__ import annotations

import csv
import random
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from service.engine import RULE_IDS
from service.ruletable.importers.rebuild import run_import
from service.ruletable.load import DATA_DIR

CMS = (Path(__file__).parents[2] / "../shared/reference/cms").resolve()
AOC_XLSX = CMS / "AOC_V2026Q2-MCR.xlsx"
RVU_CSV = CMS / "PPRRVU25_JAN1.csv"
POS_CSV = CMS / "place-of-service.csv"

pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(not CMS.is_dir(), reason="official CMS files not present (../shared)"),
]


def _julian(value: object) -> str:
    return "" if value is None else datetime.strptime(str(value), "%Y%j").date().isoformat()


def _official_aoc_rows() -> list[tuple[str, ...]]:
    from openpyxl import load_workbook

    book = load_workbook(AOC_XLSX, read_only=True)
    try:
        rows = list(book.worksheets[0].iter_rows(min_row=3, values_only=True))
    finally:
        book.close()
    return [
        (str(r[1]), str(r[0]), _julian(r[2]), str(r[3]), _julian(r[4]), _julian(r[5]),
         _julian(r[6]), " ".join(str(r[7] or "").split()))
        for r in rows
    ]


def _shipped(name: str) -> list[list[str]]:
    with (DATA_DIR / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _official_rvu_rows() -> list[list[str]]:
    with RVU_CSV.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return [row for row in rows[10:] if row and row[0].strip().strip("\x1a")]


def test_sample_of_official_aoc_rows_is_in_the_shipped_table() -> None:
    official = _official_aoc_rows()
    shipped = {tuple(row) for row in _shipped("aoc.csv")[1:]}
    assert len(official) == 9000
    for row in random.Random(20260401).sample(official, 200):
        assert row in shipped, row


def test_every_official_rvu_code_has_indicators() -> None:
    official = _official_rvu_rows()
    shipped = {row[0]: row[1:] for row in _shipped("fee_indicators.csv")[1:]}
    assert {row[0].zfill(5) for row in official} == shipped.keys()
    plain: dict[str, list[str]] = {}
    for row in official:
        if row[1] == "":
            plain.setdefault(row[0].zfill(5), row)
    codes = sorted(plain)
    for code in [*random.Random(2025).sample(codes, 200), "64490", "64491", "0213T", "99153"]:
        row = plain[code]
        # F-RVU-COLS order: STATUS CODE 3, PCTC IND 13, GLOB DAYS 14, MULT PROC 18, BILAT SURG 19
        glob = row[14].zfill(3) if row[14].isdigit() else row[14]
        assert shipped[code] == [row[3], glob, row[18], row[19], row[13]], code


def test_no_rvu_description_text_in_the_shipped_data() -> None:
    descriptions = {row[2].strip() for row in _official_rvu_rows()} - {""}
    assert len(descriptions) > 10000
    for name in ("aoc.csv", "fee_indicators.csv"):
        cells = {cell for row in _shipped(name) for cell in row}
        assert not cells & descriptions, name
    blob = b"".join(p.read_bytes() for p in sorted(DATA_DIR.rglob("*.*")))
    for code in ("64490", "64491", "64493", "64633", "20552"):
        text = next(row[2] for row in _official_rvu_rows() if row[0] == code)
        assert text.encode() not in blob, code


def test_reimporting_the_official_files_reproduces_the_shipped_data(tmp_path: Path) -> None:
    out = tmp_path / "data"
    shutil.copytree(DATA_DIR, out, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("aoc.csv", "fee_indicators.csv", "place_of_service.csv", "manifest.json"):
        (out / name).unlink()
    report = run_import(
        AOC_XLSX, RVU_CSV, POS_CSV, out, pos_release_label="2024", rule_ids=RULE_IDS
    )
    for name in ("aoc.csv", "fee_indicators.csv", "place_of_service.csv", "manifest.json"):
        assert (out / name).read_bytes() == (DATA_DIR / name).read_bytes(), name
    assert report.table.version == (
        "aoc-2026q2.pfs-2025jan.pos-2024.curated-2.icd10cm-2021jan-2023oct-2025apr-2026apr.mue-descriptor.payers-4.regions-1.visits-1.freq-1"
    )
