"""The CMS NCCI add-on code (AOC) workbook -> `aoc.csv` records.

CMS publishes the AOC edits quarterly as an Excel workbook (`AOC_V2026Q2-MCR.xlsx`): AMA notice
rows, then a header row, then one row per (add-on, primary) edit with Julian dates (`YYYYDDD`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from service.ruletable.codes import HCPCS_RE
from service.ruletable.importers.common import ImportFileError, cell_text, source_code

__all__ = ["AOC_HEADERS", "aoc_quarter", "julian_to_date", "read_aoc"]

AOC_HEADERS = (
    "AOC_Edit_Type",
    "Add-On_Code",
    "AOC_DelDT",
    "Primary_Code",
    "Primary_Code_DelDT",
    "AOC_Edit_EffDT",
    "AOC_Edit_DelDT",
    "Special_Instruction_Notes",
)
_HEADER_SEARCH_ROWS = 30
_AOC_NAME = re.compile(r"AOC_V(\d{4})Q([1-4])(?:_\d+)?-MCR", re.IGNORECASE)
_JULIAN = re.compile(r"(\d{4})(\d{3})")


def aoc_quarter(path: Path) -> str:
    """`AOC_V2026Q2-MCR.xlsx` or `AOC_V2025Q4_01-MCR.xlsx` -> `2026Q2` / `2025Q4`."""
    match = _AOC_NAME.search(path.name)
    if match is None:
        raise ImportFileError(
            path.name, "-", "-", "cannot tell the quarter from the file name "
            "(expected CMS naming like AOC_V2026Q2-MCR.xlsx)",
        )
    return f"{match.group(1)}Q{match.group(2)}"



def julian_to_date(value: str) -> date:
    """CMS Julian `YYYYDDD` (year, day of year) -> date; `2013091` -> 2013-04-01."""
    match = _JULIAN.fullmatch(value)
    if match is None:
        raise ValueError(f"expected a Julian date YYYYDDD, got {value!r}")
    year, day = int(match.group(1)), int(match.group(2))
    first = date(year, 1, 1)
    days_in_year = (date(year + 1, 1, 1) - first).days
    if not 1900 <= year <= 2199 or not 1 <= day <= days_in_year:
        raise ValueError(f"not a Julian date (year {year}, day {day}): {value!r}")
    return first + timedelta(days=day - 1)



def read_aoc(path: Path) -> list[dict[str, str]]:
    """Every data row of the AOC workbook as `aoc.csv` records (ISO dates), in file order."""
    try:
        from openpyxl import load_workbook
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportFileError(
            path.name, "-", "-", "reading the AOC workbook needs openpyxl (pip install "
            "'claims-validator[importer]')",
        ) from exc
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a bad workbook
        raise ImportFileError(path.name, "-", "-", f"not a readable .xlsx workbook: {exc}") from exc
    try:
        sheet = workbook.worksheets[0]
        return list(_aoc_records(path.name, sheet.iter_rows(values_only=True)))
    finally:
        workbook.close()


def _aoc_records(name: str, rows: Iterable[Sequence[Any]]) -> Iterator[dict[str, str]]:
    index: dict[str, int] | None = None
    for number, raw in enumerate(rows, start=1):
        cells = [cell_text(v) for v in raw]
        if index is None:
            if all(h in cells for h in AOC_HEADERS):
                index = {h: cells.index(h) for h in AOC_HEADERS}
            elif number >= _HEADER_SEARCH_ROWS:
                break
            continue
        if not any(cells):
            continue
        yield _aoc_record(name, number, cells, index)
    if index is None:
        raise ImportFileError(
            name, "-", "-", f"no header row with {', '.join(AOC_HEADERS)} in the first "
            f"{_HEADER_SEARCH_ROWS} rows",
        )


def _aoc_record(name: str, number: int, cells: list[str], index: dict[str, int]) -> dict[str, str]:
    def get(header: str) -> str:
        position = index[header]
        return cells[position] if position < len(cells) else ""

    def code(header: str) -> str:
        value = source_code(get(header))
        if not HCPCS_RE.fullmatch(value):
            raise ImportFileError(name, number, header, f"not a HCPCS/CPT code: {value!r}")
        return value

    def when(header: str, *, required: bool = False) -> str:
        value = get(header)
        if not value:
            if required:
                raise ImportFileError(name, number, header, "missing date")
            return ""
        try:
            return julian_to_date(value).isoformat()
        except ValueError as exc:
            raise ImportFileError(name, number, header, str(exc)) from None

    edit_type = get("AOC_Edit_Type")
    if edit_type not in ("1", "2", "3"):
        raise ImportFileError(
            name, number, "AOC_Edit_Type", f"expected 1, 2 or 3, got {edit_type!r}"
        )
    return {
        "add_on_code": code("Add-On_Code"),
        "edit_type": edit_type,
        "aoc_deleted": when("AOC_DelDT"),
        "primary_code": code("Primary_Code"),
        "primary_deleted": when("Primary_Code_DelDT"),
        "effective": when("AOC_Edit_EffDT", required=True),
        "deleted": when("AOC_Edit_DelDT"),
        "note": " ".join(get("Special_Instruction_Notes").split()),
    }
