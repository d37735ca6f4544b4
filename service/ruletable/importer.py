"""Rebuilds the derived rule-table files from the official CMS releases.

CMS publishes the NCCI add-on code edits quarterly (an Excel workbook), the physician fee
schedule relative value file (a CSV with a header split over several rows) and the place of
service code set. This module turns them into the small, description-free CSVs the service
ships (`aoc.csv`, `fee_indicators.csv`, `place_of_service.csv`) plus `manifest.json` (source
file, release, sha256, row count, composed version), then proves the result by loading it.

Output is deterministic (no timestamps, fixed row order, `\\n` line ends): importing the same
files twice gives byte-identical data. The AMA CPT description text is never read or written.
Wired into the CLI as `claims-validator rules import` through `main_import`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import shutil
import tempfile
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from service.ruletable.compiled import RuleTable
from service.ruletable.importing import SourceFileError, cell_text, install_table, run_command
from service.ruletable.load import (
    AOC_FILE,
    DATA_DIR,
    FEE_FILE,
    MANIFEST_FILE,
    POS_ALLOWED_FILE,
    POS_FILE,
    TABLE_FILES,
    RuleTableError,
)
from service.ruletable.schema import (
    AOC_COLUMNS,
    FEE_COLUMNS,
    GLOBAL_DAYS,
    HCPCS_RE,
    POS_COLUMNS,
    ManifestTable,
    compose_version,
)

__all__ = [
    "ImportFileError",
    "ImportReport",
    "aoc_quarter",
    "julian_to_date",
    "main_import",
    "pos_release",
    "read_aoc",
    "read_pos",
    "read_rvu",
    "run_import",
    "rvu_release",
]

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
_AOC_NAME = re.compile(r"AOC_V(\d{4})Q([1-4])(?:_\d+)?-MCR", re.IGNORECASE)
_RVU_NAME = re.compile(r"PPRRVU(\d{2}|\d{4})_([A-Z]{3})", re.IGNORECASE)
_YEAR = re.compile(r"(?<!\d)(19|20)(\d{2})(?!\d)")
_LABEL = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]*")
_JULIAN = re.compile(r"(\d{4})(\d{3})")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_GLOBAL_PADDED = {"0": "000", "00": "000", "10": "010", "90": "090"}


class ImportFileError(SourceFileError):
    """A source file cannot be imported; the message names the file, row and column."""


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import wrote and the table it produced."""

    out_dir: Path
    imported: tuple[str, ...]
    """Tables rebuilt from the given files (the others were kept)."""
    tables: tuple[ManifestTable, ...]
    table: RuleTable

    def summary(self) -> str:
        lines = [f"rule table {self.table.version} written to {self.out_dir}"]
        for name, entry in zip(TABLE_FILES, self.tables, strict=True):
            state = "imported" if name in self.imported else "kept"
            lines.append(
                f"  {entry.file}: {entry.rows} rows, release {entry.release} "
                f"from {entry.source_file} ({state})"
            )
        lines.append(f"  digest {self.table.digest}")
        return "\n".join(lines)


# -- names and dates ---------------------------------------------------------------------------


def aoc_quarter(path: Path) -> str:
    """`AOC_V2026Q2-MCR.xlsx` or `AOC_V2025Q4_01-MCR.xlsx` -> `2026Q2` / `2025Q4`."""
    match = _AOC_NAME.search(path.name)
    if match is None:
        raise ImportFileError(
            path.name, "-", "-", "cannot tell the quarter from the file name "
            "(expected CMS naming like AOC_V2026Q2-MCR.xlsx)",
        )
    return f"{match.group(1)}Q{match.group(2)}"


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


def pos_release(path: Path, given: str | None, *, sha256: str, kept: ManifestTable | None) -> str:
    """The code-set release: `given`, else a year in the file name, else the kept table's
    release when the file is byte-identical to the one it was imported from."""
    if given:
        if not _LABEL.fullmatch(given):
            raise ImportFileError(
                path.name, "-", "-", f"release label {given!r}: use letters, digits and '-'"
            )
        return given
    match = _YEAR.search(path.stem)
    if match is not None:
        return match.group(1) + match.group(2)
    if kept is not None and kept.source_sha256 == sha256:
        return kept.release
    raise ImportFileError(
        path.name, "-", "-",
        "cannot tell the code-set release from the file name; pass --pos-release (e.g. 2024)",
    )


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


def _code(value: str) -> str:
    """A HCPCS/CPT code as CMS writes it; Excel drops leading zeros (00100 -> 100), restore them."""
    value = value.strip().upper()
    return value.zfill(5) if value.isdigit() and len(value) < 5 else value


# -- AOC workbook ------------------------------------------------------------------------------


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
        value = _code(get(header))
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


# -- RVU file ----------------------------------------------------------------------------------


def read_rvu(path: Path) -> list[dict[str, str]]:
    """Payment-policy indicators per HCPCS code (the row without a modifier, else the first).

    The header is split over several rows; columns are found by their reassembled names.
    The DESCRIPTION column is never read.
    """
    text = _read_text(path)
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

    code = _code(get("code"))
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


# -- POS code set ------------------------------------------------------------------------------


def read_pos(path: Path) -> list[dict[str, str]]:
    """The place-of-service code set (`code,name,medicare_pfs_rate`), sorted by code."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    for column in POS_COLUMNS:
        if column not in header:
            raise ImportFileError(path.name, 1, column, "column not found in the header")
    where = {column: header.index(column) for column in POS_COLUMNS}
    records: dict[str, dict[str, str]] = {}
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise ImportFileError(path.name, number, "-", "short row")
        code = row[where["code"]].strip().zfill(2)
        if not re.fullmatch(r"[0-9]{2}", code):
            raise ImportFileError(path.name, number, "code", f"not a 2-digit POS code: {code!r}")
        if code in records:
            raise ImportFileError(path.name, number, "code", f"duplicate code {code!r}")
        rate = row[where["medicare_pfs_rate"]].strip().lower()
        if rate not in ("facility", "non-facility", ""):
            raise ImportFileError(
                path.name, number, "medicare_pfs_rate",
                f"expected facility or non-facility, got {rate!r}",
            )
        name = " ".join(row[where["name"]].split())
        if not name:
            raise ImportFileError(path.name, number, "name", "empty")
        records[code] = {"code": code, "name": name, "medicare_pfs_rate": rate}
    return [records[code] for code in sorted(records)]


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="strict")


# -- writing -----------------------------------------------------------------------------------


def _csv_bytes(columns: Sequence[str], records: Iterable[dict[str, str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue().encode("utf-8")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_import(
    aoc: Path | None,
    rvu: Path | None,
    pos: Path | None,
    out_dir: Path,
    *,
    pos_release_label: str | None = None,
    rule_ids: Collection[str] | None = None,
) -> ImportReport:
    """Rebuild the tables from the given CMS files (any subset; the others are kept).

    The new table is assembled in a scratch copy of `out_dir` (missing files are seeded from
    the shipped data), validated with `load_table`, and only then written into `out_dir`, which
    is loaded once more to prove it. Raises `ImportFileError` or `RuleTableError`.
    """
    out_dir = Path(out_dir)
    kept = _kept_tables(out_dir if (out_dir / MANIFEST_FILE).exists() else DATA_DIR)
    outputs: dict[str, bytes] = {}
    entries: dict[str, ManifestTable] = {}
    if aoc is not None:
        records = read_aoc(aoc)
        outputs[AOC_FILE] = _csv_bytes(AOC_COLUMNS, records)
        entries["aoc"] = ManifestTable(
            file=AOC_FILE, source_file=aoc.name, release=aoc_quarter(aoc),
            source_sha256=_sha256(aoc), rows=len(records),
        )
    if rvu is not None:
        records = read_rvu(rvu)
        outputs[FEE_FILE] = _csv_bytes(FEE_COLUMNS, records)
        entries["fee_indicators"] = ManifestTable(
            file=FEE_FILE, source_file=rvu.name, release=rvu_release(rvu),
            source_sha256=_sha256(rvu), rows=len(records),
        )
    if pos is not None:
        records = read_pos(pos)
        outputs[POS_FILE] = _csv_bytes(POS_COLUMNS, records)
        digest = _sha256(pos)
        release = pos_release(
            pos, pos_release_label, sha256=digest, kept=kept.get("place_of_service")
        )
        entries["place_of_service"] = ManifestTable(
            file=POS_FILE, source_file=pos.name, release=release, source_sha256=digest,
            rows=len(records),
        )
    with tempfile.TemporaryDirectory(prefix="ruletable-") as scratch:
        stage = Path(scratch) / "data"
        _seed(stage, out_dir)
        for name, content in outputs.items():
            (stage / name).write_bytes(content)
        tables = _kept_tables(stage) | entries
        missing = [t for t in TABLE_FILES if t not in tables]
        if missing:
            raise RuleTableError(
                MANIFEST_FILE, 1, f"tables.{missing[0]}",
                "no existing table to keep; give its source file",
            )
        curated = _curated_version(stage)
        manifest = {
            "curated_version": curated,
            "tables": {name: tables[name].model_dump() for name in TABLE_FILES},
            "version": compose_version(tables, curated),
        }
        outputs[MANIFEST_FILE] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        (stage / MANIFEST_FILE).write_bytes(outputs[MANIFEST_FILE])
        table = install_table(stage, out_dir, outputs, rule_ids=rule_ids)
    return ImportReport(
        out_dir=out_dir,
        imported=tuple(name for name in TABLE_FILES if name in entries),
        tables=tuple(tables[name] for name in TABLE_FILES),
        table=table,
    )


def _seed(stage: Path, out_dir: Path) -> None:
    """Copy `out_dir` into the scratch dir; data files and the rule catalogue it lacks as a
    whole (top-level entries) are taken from the shipped data."""
    stage.mkdir(parents=True)
    for source in (out_dir, DATA_DIR):
        if not source.is_dir():
            continue
        for entry in sorted(source.iterdir()):
            target = stage / entry.name
            if target.exists() or entry.name == "__pycache__" or entry.suffix == ".tmp":
                continue
            if entry.is_dir():
                shutil.copytree(entry, target, ignore=shutil.ignore_patterns("__pycache__"))
            elif entry.is_file():
                shutil.copyfile(entry, target)


def _kept_tables(directory: Path) -> dict[str, ManifestTable]:
    path = directory / MANIFEST_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {
            name: ManifestTable.model_validate(entry)
            for name, entry in data.get("tables", {}).items()
            if name in TABLE_FILES
        }
    except (ValueError, AttributeError) as exc:
        raise RuleTableError(
            MANIFEST_FILE, 1, "tables", f"cannot read the existing manifest: {exc}"
        ) from None


def _curated_version(stage: Path) -> int:
    data = yaml.safe_load((stage / POS_ALLOWED_FILE).read_text(encoding="utf-8"))
    version = data.get("curated_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise RuleTableError(POS_ALLOWED_FILE, 1, "curated_version", "missing or not an integer")
    return version


# -- command line ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claims-validator rules import",
        description="Rebuild the rule table from the official CMS files. Tables whose file is "
        "not given are kept as they are.",
    )
    parser.add_argument("--aoc", type=Path, metavar="FILE", help="NCCI add-on code workbook, "
                        "e.g. AOC_V2026Q2-MCR.xlsx")
    parser.add_argument("--rvu", type=Path, metavar="FILE", help="PFS relative value file, "
                        "e.g. PPRRVU25_JAN1.csv")
    parser.add_argument("--pos", type=Path, metavar="FILE", help="place-of-service code set CSV "
                        "(code,name,medicare_pfs_rate)")
    parser.add_argument("--pos-release", metavar="LABEL", help="release of the POS code set "
                        "(default: a year in its file name)")
    parser.add_argument("--out", type=Path, metavar="DIR", default=DATA_DIR,
                        help="table directory (default: the shipped data)")
    return parser


def main_import(argv: list[str]) -> int:
    """`claims-validator rules import`: 0 done, 1 a bad file (named with row/column), 2 usage."""

    def run(args: argparse.Namespace) -> str:
        return run_import(
            args.aoc, args.rvu, args.pos, args.out, pos_release_label=args.pos_release
        ).summary()

    return run_command(_parser(), argv, ("aoc", "rvu", "pos"), run)
