"""The CMS place-of-service code set (a CSV of `code,name,medicare_pfs_rate`) -> its table."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from service.ruletable.file_models import POS_COLUMNS, ManifestTable
from service.ruletable.importers.common import ImportFileError, read_source_text

__all__ = ["pos_release", "read_pos"]

_YEAR = re.compile(r"(?<!\d)(19|20)(\d{2})(?!\d)")
_LABEL = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]*")


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


def read_pos(path: Path) -> list[dict[str, str]]:
    """The place-of-service code set (`code,name,medicare_pfs_rate`), sorted by code."""
    reader = csv.reader(io.StringIO(read_source_text(path), newline=""))
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
