"""The CMS physician fee schedule relative value file (`PPRRVU25_JAN1.csv`) -> fee indicators.

Its header is split over several rows; columns are found by their reassembled names. Only the
payment-policy indicators are read: the DESCRIPTION column (AMA CPT text) never is.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from service.ruletable.codes import HCPCS_RE
from service.ruletable.file_models import GLOBAL_DAYS
from service.ruletable.importers.common import ImportFileError, read_source_text, source_code

__all__ = ["RVU_COLUMNS", "read_rvu", "rvu_release"]

RVU_COLUMNS = {
    "code": "HCPCS",
    "mod": "MOD",
    "status": "STATUS CODE",
    "global_days": "GLOB DAYS",
    "mult_proc": "MULT PROC",
    "bilateral": "BILAT SURG",
    "pctc": "PCTC IND",
}
_HEADER_SEARCH_ROWS = 30
_MAX_HEADER_ROWS = 6
_RVU_NAME = re.compile(r"PPRRVU(\d{2}|\d{4})_([A-Z]{3})", re.IGNORECASE)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_GLOBAL_PADDED = {"0": "000", "00": "000", "10": "010", "90": "090"}


def rvu_release(path: Path) -> str:
    """`PPRRVU25_JAN1.csv` -> `2025-JAN`."""
    match = _RVU_NAME.search(path.name)
    month = match.group(2).upper() if match else ""
    if match is None or month not in _MONTHS:
        raise ImportFileError(
            path.name, "-", "-", "cannot tell the release from the file name "
            "(expected CMS naming like PPRRVU25_JAN1.csv)",
        )
    year = match.group(1)
    return f"{'20' + year if len(year) == 2 else year}-{month}"


def read_rvu(path: Path) -> list[dict[str, str]]:
    """Payment-policy indicators per HCPCS code (the row without a modifier, else the first).

    The header is split over several rows; columns are found by their reassembled names.
    The DESCRIPTION column is never read.
    """
    text = read_source_text(path)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header_at = next(
        (
            i for i, row in enumerate(rows[:_HEADER_SEARCH_ROWS])
            if [cell.strip().upper() for cell in row[:2]] == ["HCPCS", "MOD"]
        ),
        None,
    )
    if header_at is None:
        raise ImportFileError(
            path.name, "-", "HCPCS", f"no header row starting HCPCS,MOD in the first "
            f"{_HEADER_SEARCH_ROWS} rows",
        )
    names = _split_header(rows, header_at)
    where: dict[str, int] = {}
    for key, column in RVU_COLUMNS.items():
        if column not in names:
            raise ImportFileError(
                path.name, header_at + 1, column, "column not found in the header"
            )
        where[key] = names.index(column)
    chosen: dict[str, dict[str, str]] = {}
    has_plain: set[str] = set()
    for number, row in enumerate(rows[header_at + 1 :], start=header_at + 2):
        if not any(cell.strip().strip("\x1a") for cell in row):
            continue  # blank rows and the DOS end-of-file mark
        record = _rvu_record(path.name, number, row, where)
        code, modifier = record.pop("code_"), record.pop("mod")
        if modifier == "" and code not in has_plain:
            has_plain.add(code)
            chosen[code] = record
        elif code not in chosen:
            chosen[code] = record
    return list(chosen.values())


def _split_header(rows: list[list[str]], header_at: int) -> list[str]:
    """Join each column's words over the header rows (a run of rows with 2+ non-blank cells)."""
    first = header_at
    while (
        first > 0
        and header_at - first < _MAX_HEADER_ROWS - 1
        and sum(1 for cell in rows[first - 1] if cell.strip()) >= 2
    ):
        first -= 1
    width = len(rows[header_at])
    names = []
    for column in range(width):
        words = [
            rows[r][column].strip() for r in range(first, header_at + 1)
            if column < len(rows[r]) and rows[r][column].strip()
        ]
        names.append(" ".join(" ".join(words).upper().split()))
    return names


def _rvu_record(name: str, number: int, row: list[str], where: dict[str, int]) -> dict[str, str]:
    def get(key: str) -> str:
        position = where[key]
        if position >= len(row):
            raise ImportFileError(name, number, RVU_COLUMNS[key], "missing value (short row)")
        return row[position].strip()

    code = source_code(get("code"))
    if not HCPCS_RE.fullmatch(code):
        raise ImportFileError(name, number, "HCPCS", f"not a HCPCS/CPT code: {code!r}")
    status = get("status").upper()
    if not re.fullmatch(r"[A-Z]", status):
        raise ImportFileError(name, number, "STATUS CODE", f"expected one letter, got {status!r}")
    global_days = get("global_days").upper()
    global_days = _GLOBAL_PADDED.get(global_days, global_days)
    if global_days not in GLOBAL_DAYS:
        raise ImportFileError(
            name, number, "GLOB DAYS", f"expected one of {', '.join(sorted(GLOBAL_DAYS))}, "
            f"got {global_days!r}",
        )
    record = {"code_": code, "mod": get("mod").upper(), "code": code, "status": status,
              "global_days": global_days}
    for key in ("mult_proc", "bilateral", "pctc"):
        value = get(key)
        if not re.fullmatch(r"[0-9]", value):
            raise ImportFileError(
                name, number, RVU_COLUMNS[key], f"expected a digit, got {value!r}"
            )
        record[key] = value
    return record
