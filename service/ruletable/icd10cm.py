"""The ICD-10-CM code set, read from the installed `simple-icd-10-cm` package.

Its April 2026 release is FY2026 with the April 1, 2026 update. Only the package's code list is
read, not its XML tree: that gives the same codes as the package's `get_all_codes`/`is_leaf` (a
test proves it on every code) for a fraction of the time and memory. Billable codes are the
leaves; the other categories and subcategories are valid but not billable (M54.5 since FY2022,
F-DX-M545). Both sets are frozensets of codes written without the dot, compiled once per process.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import re
from pathlib import Path

from service.ruletable.compiled.diagnoses import DiagnosisCodeSet, icd_display
from service.ruletable.files import RuleTableError

__all__ = ["ICD_DISTRIBUTION", "load_icd10cm"]

ICD_PACKAGE = "simple_icd_10_cm"
ICD_DISTRIBUTION = "simple-icd-10-cm"

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
_CODE_LIST_RE = re.compile(r"code-list-([A-Za-z]+)-(\d{4})\.txt")
_ICD_KEY_RE = re.compile(r"[A-Z][0-9A-Z]{2}[0-9A-Z]{0,4}")  # QA0 (April 2026) has a letter 2nd
_MIN_ICD_CODES = 50_000


@functools.cache
def load_icd10cm() -> DiagnosisCodeSet:
    """The code set shipped in the installed `simple-icd-10-cm`, compiled once per process."""
    spec = importlib.util.find_spec(ICD_PACKAGE)
    where = ICD_DISTRIBUTION
    if spec is None or not spec.submodule_search_locations:
        raise RuleTableError(where, "-", "-", f"package not installed: pip install {where}")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    lists = sorted(p for p in data.glob("code-list-*.txt") if _CODE_LIST_RE.fullmatch(p.name))
    if len(lists) != 1:
        raise RuleTableError(
            where, "-", "-",
            f"expected one code-list-<Month>-<Year>.txt in {data}, found {len(lists)}",
        )
    path = lists[0]
    match = _CODE_LIST_RE.fullmatch(path.name)
    assert match is not None
    month_name, year = match.group(1).lower(), int(match.group(2))
    if month_name not in _MONTHS:
        raise RuleTableError(path.name, "-", "-", f"{month_name!r} is not a month")
    month = _MONTHS.index(month_name) + 1
    fiscal_year = year + 1 if month >= 10 else year  # FY N runs Oct 1 of N-1 to Sep 30 of N
    raw = path.read_bytes()
    codes: list[str] = []
    for number, line in enumerate(raw.decode("utf-8").split("\n"), start=1):
        key = line.split(" ")[0].replace(".", "").strip()
        if not key or key.isdigit() or "-" in key:  # blank, chapter number, block range
            continue
        if not _ICD_KEY_RE.fullmatch(key):
            raise RuleTableError(path.name, number, "code", f"not an ICD-10-CM code: {key!r}")
        codes.append(key)
    valid = frozenset(codes)
    if len(valid) < _MIN_ICD_CODES:
        raise RuleTableError(
            path.name, "-", "-", f"only {len(valid)} codes; expected at least {_MIN_ICD_CODES}"
        )
    parents = {c[:k] for c in valid for k in range(3, len(c))}
    billable = valid - parents
    try:
        version = importlib.metadata.version(ICD_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - found just above
        version = "?"
    return DiagnosisCodeSet(
        release=f"{year}{month_name[:3]}",
        label=f"ICD-10-CM FY{fiscal_year} ({month_name.capitalize()} {year} release)",
        billable=billable,
        written={**{c: c for c in billable}, **{icd_display(c): c for c in billable if len(c) > 3}},
        headers=valid & parents,
        ordered=tuple(sorted(billable)),
        source_file=f"{ICD_DISTRIBUTION} {version}: {path.name}",
        source_sha256=hashlib.sha256(raw).hexdigest(),
    )
