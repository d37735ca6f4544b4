"""The official CMS practitioner Medically Unlikely Edits (MUE) file -> `mue.csv`.

CMS publishes the practitioner MUE table quarterly (`MCR_MUE_PractitionerServices_Eff_MM-DD-YYYY`,
CSV and xlsx in one zip; F-MUE-FMT-3). Its four columns are `HCPCS/CPT Code`, `Practitioner
Services MUE Values`, `MUE Adjudication Indicator` (text that starts with the digit: `2 Date of
Service Edit: Policy`) and `MUE Rationale` (F-MUE-FMT-1/2). AMA notice rows come first and the
first header cell may hold a line break (`"HCPCS/\\nCPT Code"`), so the header row is found by its
content, never by its position.

`claims-validator rules import-mue --mue FILE [--out DIR]` turns that file into the two small files
the loader reads: `mue.csv` (code, mue, mai, rationale) and `mue_source.json` (source file,
release, sha256, rows and the reference every UNITS_EXCEED_LIMIT finding cites). It stages the
new table, proves it with `read_table`, and only then writes into DIR. Until a CMS file is
imported, the shipped rows are CPT-descriptor limits for 64490-64495 (billing-rules 2.3), labelled
as such; they are not CMS MUE values.
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
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from service.ruletable.codes import HCPCS_RE
from service.ruletable.file_models import (
    MANIFEST_FILE,
    MUE_COLUMNS,
    MUE_FILE,
    MUE_RELEASE_RE,
    MUE_SOURCE_FILE,
    MueRow,
    MueSource,
)
from service.ruletable.importers.common import (
    SourceFileError,
    cell_text,
    install_table,
    run_command,
)
from service.ruletable.load import DATA_DIR

__all__ = [
    "MueImportError",
    "main_import_mue",
    "mue_csv_bytes",
    "mue_release",
    "read_official_mue",
    "run_import_mue",
    "source_json_bytes",
]

# Header cells compared with every space and line break removed, case-folded (F-MUE-FMT-1/2).
_CODE_HEADER = "hcpcs/cptcode"
_VALUE_HEADERS = {
    "practitionerservicesmuevalues": "practitioner",
    "outpatienthospitalservicesmuevalues": "outpatient hospital",
    "dmesupplierservicesmuevalues": "DME supplier",
}
_MAI_HEADER = "mueadjudicationindicator"
_RATIONALE_HEADER = "muerationale"
_HEADER_SCAN_ROWS = 50
_EFF_RE = re.compile(r"_Eff_(\d{2})-(\d{2})-(\d{4})", re.IGNORECASE)


class MueImportError(SourceFileError):
    """The official file cannot be read; the message names file, row and column."""


def mue_release(path: Path) -> str:
    """`MCR_MUE_PractitionerServices_Eff_04-01-2026.csv` -> `2026q2` (the quarter it starts)."""
    match = _EFF_RE.search(path.name)
    if match is None:
        raise MueImportError(
            path.name, "-", "-",
            "no `_Eff_MM-DD-YYYY` date in the file name; give the release with --release",
        )
    month, year = int(match.group(1)), match.group(3)
    if not 1 <= month <= 12:
        raise MueImportError(path.name, "-", "-", f"month {month} in the file name is not a month")
    return f"{year}q{(month - 1) // 3 + 1}"


def read_official_mue(path: Path) -> list[MueRow]:
    """The rows of an official CMS practitioner MUE file (.csv or .xlsx), validated."""
    name = path.name
    rows = _xlsx_rows(path) if path.suffix.lower() in {".xlsx", ".xlsm"} else _csv_rows(path)
    header_at, index = _find_header(name, rows)
    out: list[MueRow] = []
    seen: dict[str, int] = {}
    for number, cells in enumerate(rows[header_at + 1 :], start=header_at + 2):
        if not any(cells):
            continue
        out.append(_row(name, number, cells, index))
        code = out[-1].code
        if code in seen:
            raise MueImportError(
                name, number, "HCPCS/CPT Code", f"code {code} already listed on row {seen[code]}"
            )
        seen[code] = number
    if not out:
        raise MueImportError(name, header_at + 1, "-", "no MUE rows after the header")
    out.sort(key=lambda r: r.code)
    return out


def _csv_rows(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")  # CMS CSVs are often Windows-1252
    return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text, newline=""))]


def _xlsx_rows(path: Path) -> list[list[str]]:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - openpyxl is in the importer and dev extras
        raise MueImportError(
            path.name, "-", "-",
            "reading .xlsx needs openpyxl: pip install 'claims-validator[importer]'",
        ) from None
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        return [[cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _squash(text: str) -> str:
    return "".join(text.split()).casefold()


def _find_header(name: str, rows: Sequence[Sequence[str]]) -> tuple[int, dict[str, int]]:
    for at, cells in enumerate(rows[:_HEADER_SCAN_ROWS]):
        squashed = [_squash(c) for c in cells]
        if _CODE_HEADER not in squashed:
            continue
        index = {"code": squashed.index(_CODE_HEADER)}
        for i, cell in enumerate(squashed):
            kind = _VALUE_HEADERS.get(cell)
            if kind is not None and kind != "practitioner":
                raise MueImportError(
                    name, at + 1, cells[i],
                    f"this is the {kind} MUE table; import the Practitioner Services file",
                )
            if kind == "practitioner":
                index["mue"] = i
            elif cell == _MAI_HEADER:
                index["mai"] = i
            elif cell == _RATIONALE_HEADER:
                index["rationale"] = i
        for key, label in (
            ("mue", "Practitioner Services MUE Values"),
            ("mai", "MUE Adjudication Indicator"),
            ("rationale", "MUE Rationale"),
        ):
            if key not in index:
                raise MueImportError(name, at + 1, label, "missing column in the header row")
        return at, index
    raise MueImportError(
        name, "-", "HCPCS/CPT Code",
        f"no header row with a `HCPCS/CPT Code` cell in the first {_HEADER_SCAN_ROWS} rows",
    )


def _row(name: str, number: int, cells: Sequence[str], index: dict[str, int]) -> MueRow:
    def get(key: str) -> str:
        i = index[key]
        return cells[i] if i < len(cells) else ""

    code = get("code").upper()
    if not HCPCS_RE.fullmatch(code):
        raise MueImportError(name, number, "HCPCS/CPT Code", f"not a HCPCS/CPT code: {code!r}")
    value = get("mue")
    if not value.isdigit():
        raise MueImportError(
            name, number, "Practitioner Services MUE Values", f"not a whole number: {value!r}"
        )
    mai = get("mai")
    if not mai or mai[0] not in "123":
        raise MueImportError(
            name, number, "MUE Adjudication Indicator",
            f"expected text starting with 1, 2 or 3, got {mai!r}",
        )
    rationale = " ".join(get("rationale").split()) or "(none given)"
    return MueRow.model_validate(
        {"code": code, "mue": int(value), "mai": mai[0], "rationale": rationale}
    )


def mue_csv_bytes(rows: Iterable[MueRow]) -> bytes:
    """`mue.csv` content: deterministic, `\\n` line ends, rows in code order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MUE_COLUMNS)
    for r in rows:
        writer.writerow((r.code, r.mue, r.mai, r.rationale))
    return out.getvalue().encode()


def source_json_bytes(source: MueSource) -> bytes:
    return (json.dumps(source.model_dump(), indent=2, sort_keys=True) + "\n").encode()


def run_import_mue(
    mue: Path, out_dir: Path, *, rule_ids: Collection[str], release: str | None = None
) -> MueSource:
    """Read the official file, write `mue.csv` + `mue_source.json` into `out_dir`, prove it loads.

    `out_dir` lacking a table (no manifest.json) is seeded with the shipped data first. The new
    files are validated in a scratch copy before `out_dir` is touched.
    """
    rows = read_official_mue(mue)
    label = release if release is not None else mue_release(mue)
    if not MUE_RELEASE_RE.fullmatch(label):
        raise MueImportError(mue.name, "-", "-", f"release {label!r}: use a-z and 0-9 only")
    sha = hashlib.sha256(mue.read_bytes()).hexdigest()
    source = MueSource(
        source_file=mue.name,
        release=label,
        source_sha256=sha,
        rows=len(rows),
        reference=f"CMS practitioner MUE file {mue.name} ({label}), sha256 {sha[:12]}",
    )
    outputs = {MUE_FILE: mue_csv_bytes(rows), MUE_SOURCE_FILE: source_json_bytes(source)}
    base = out_dir if (out_dir / MANIFEST_FILE).is_file() else DATA_DIR
    with tempfile.TemporaryDirectory(prefix="mue-") as scratch:
        stage = Path(scratch) / "data"
        shutil.copytree(base, stage, ignore=shutil.ignore_patterns("__pycache__", "*.tmp"))
        for file, content in outputs.items():
            (stage / file).write_bytes(content)
        install_table(stage, out_dir, outputs, rule_ids=rule_ids)
    return source


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claims-validator rules import-mue",
        description="Load the official CMS practitioner MUE file (CSV or xlsx) into the rule "
        "table, replacing the MUE rows it has.",
    )
    parser.add_argument("--mue", type=Path, metavar="FILE", required=True,
                        help="e.g. MCR_MUE_PractitionerServices_Eff_04-01-2026.csv")
    parser.add_argument("--out", type=Path, metavar="DIR", default=DATA_DIR,
                        help="table directory (default: the shipped data)")
    parser.add_argument("--release", metavar="LABEL",
                        help="release label, e.g. 2026q2 (default: the _Eff_ date in the name)")
    return parser


def main_import_mue(argv: list[str], *, rule_ids: Collection[str]) -> int:
    """`claims-validator rules import-mue`: 0 done, 1 a bad file (row/column named), 2 usage.

    `rule_ids`: the rules the new table's catalogue must cover (every rule the engine emits).
    """

    def run(args: argparse.Namespace) -> str:
        source = run_import_mue(args.mue, args.out, rule_ids=rule_ids, release=args.release)
        return (
            f"MUE table {source.release} ({source.rows} codes from {source.source_file}) "
            f"written to {args.out}"
        )

    return run_command(_parser(), argv, ("mue",), run)
