"""Compiles when each procedure code is in use and whether Medicare pays it.

- Code windows, from the AOC rows: an add-on code's `AOC_DelDT` and a primary code's
  `Primary_Code_DelDT` are the last day the code is in use (CMS says it was deleted); an add-on
  whose first edit row is later than the file's first edits (2013-04-01, CR 7501) is taken to
  start then, which is an inference (a code can exist before CMS edits it as an add-on, as
  64421 did before 2020), so the rule reading it only warns.
- Medicare payability, from `fee_status.yaml` over each code's fee-schedule status.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date

from pydantic import TypeAdapter

from service.ruletable.code_files import (
    ADDON_PRIMARIES_FILE,
    FEE_STATUS_FILE,
    AddonPrimariesFile,
    FeeStatusFile,
)
from service.ruletable.compiled import CodeWindow, FeeIndicators, NotPayable, PayerPrimary
from service.ruletable.file_models import AocRow, ManifestTable
from service.ruletable.files import RuleTableError, unique_by, validated, yaml_data

__all__ = [
    "AOC_FIRST_EDITS",
    "compile_code_windows",
    "compile_not_payable",
    "load_addon_primaries",
]

AOC_FIRST_EDITS = date(2013, 4, 1)
"""CMS first published the AOC edits effective this day (CR 7501): rows from then say nothing
about when a code started."""
_CONTRACTOR_DEFINED = "CCCCC"
_FEE_STATUS = TypeAdapter(FeeStatusFile)
_ADDON_PRIMARIES = TypeAdapter(AddonPrimariesFile)


def compile_code_windows(rows: Sequence[AocRow], aoc: ManifestTable) -> dict[str, CodeWindow]:
    """Code -> its known window of use, from the AOC rows' dates."""
    where = f"CMS NCCI add-on code edits {aoc.source_file} ({aoc.release})"
    last: dict[str, tuple[date, str]] = {}
    first: dict[str, date] = {}

    def ended(code: str, day: date, column: str) -> None:
        known = last.get(code)
        if known is None or day > known[0]:  # rows that disagree: the latest, the safe side
            last[code] = (day, f"{where}, {column}")

    for row in rows:
        if row.aoc_deleted is not None:
            ended(row.add_on_code, row.aoc_deleted, "AOC_DelDT")
        if row.primary_deleted is not None and row.primary_code != _CONTRACTOR_DEFINED:
            ended(row.primary_code, row.primary_deleted, "Primary_Code_DelDT")
        known_first = first.get(row.add_on_code)
        if known_first is None or row.effective < known_first:
            first[row.add_on_code] = row.effective
    windows: dict[str, CodeWindow] = {}
    for code in sorted({*last, *(c for c, d in first.items() if d > AOC_FIRST_EDITS)}):
        start = first.get(code)
        start = start if start is not None and start > AOC_FIRST_EDITS else None
        end, end_source = last.get(code, (None, ""))
        windows[code] = CodeWindow(
            code=code,
            first=start,
            first_source=f"{where}, first AOC_Edit_EffDT" if start else "",
            last=end,
            last_source=end_source,
        )
    return windows


def compile_not_payable(
    files: Mapping[str, bytes], fee: Mapping[str, FeeIndicators], source: ManifestTable
) -> dict[str, NotPayable]:
    """Code -> why Medicare does not pay it, for the codes of a listed fee-schedule status."""
    if FEE_STATUS_FILE not in files:
        raise RuleTableError(FEE_STATUS_FILE, "-", "-", "file not found in the table directory")
    data = validated(FEE_STATUS_FILE, _FEE_STATUS, yaml_data(files, FEE_STATUS_FILE), "mapping")
    statuses = unique_by(
        FEE_STATUS_FILE, "statuses.status", data.statuses, lambda e: e.status
    )
    # A code a newer fee schedule no longer gives status I keeps its replacement unused: the
    # curated list need not change in step with each quarter's import.
    use = unique_by(FEE_STATUS_FILE, "replacements.code", data.replacements, lambda r: r.code)
    # Codes Medicare asks to be reported although it never pays them (99024 post-operative
    # visits for the global surgery data collection): correct coding, so never flagged.
    reported = unique_by(FEE_STATUS_FILE, "reported.code", data.reported, lambda r: r.code)
    where = f"CMS PFS Relative Value File {source.source_file} ({source.release})"
    out: dict[str, NotPayable] = {}
    for code, indicators in fee.items():
        listed = statuses.get(indicators.status)
        if listed is None or code in reported:
            continue
        replacement = use.get(code)
        out[code] = NotPayable(
            status=listed.status,
            meaning=" ".join(listed.meaning.split()),
            exempt=frozenset(listed.exempt_modifiers),
            use=replacement.use if replacement is not None else None,
            source=where,
        )
    return out


AddonPrimaries = tuple[
    tuple[tuple[str, str, str], ...],
    dict[str, frozenset[str]],
    dict[tuple[str, str], tuple[PayerPrimary, ...]],
]


def load_addon_primaries(files: Mapping[str, bytes], payers: Collection[str]) -> AddonPrimaries:
    """The curated code ranges that are no plausible primary, the other-practitioner exceptions
    and the payers' own primaries, from `addon_primaries.yaml` (`payers`: the known payer ids)."""
    name = ADDON_PRIMARIES_FILE
    if name not in files:
        raise RuleTableError(name, "-", "-", "file not found in the table directory")
    data = validated(name, _ADDON_PRIMARIES, yaml_data(files, name), "mapping")
    ranges: list[tuple[str, str, str]] = []
    for i, group in enumerate(data.not_primaries, start=1):
        for spec in group.ranges:
            low, _, high = spec.partition("-")
            high = high or low
            if _shape(low) != _shape(high) or high < low:
                raise RuleTableError(
                    name, i, "not_primaries.ranges",
                    f"{spec}: both ends need one shape and the end after the start",
                )
            ranges.append((low, high, group.kind))
    others = {
        add_on: frozenset(entry.primaries)
        for add_on, entry in unique_by(
            name, "other_practitioner.add_on", data.other_practitioner, lambda e: e.add_on
        ).items()
    }
    by_payer: dict[tuple[str, str], list[PayerPrimary]] = {}
    for i, extra in enumerate(data.payer_primaries, start=1):
        end = extra.effective_to or date.max
        if end < extra.effective_from:
            raise RuleTableError(name, i, "payer_primaries.effective_to", "before effective_from")
        for payer in extra.payers:
            if payer not in payers:
                raise RuleTableError(
                    name, i, "payer_primaries.payers", f"unknown payer {payer!r} (payers.yaml)"
                )
            by_payer.setdefault((payer, extra.add_on), []).append(
                PayerPrimary(
                    frozenset(extra.primaries), extra.effective_from, end,
                    " ".join(extra.reference.split()),
                )
            )
    return tuple(ranges), others, {k: tuple(v) for k, v in by_payer.items()}


def _shape(code: str) -> str:
    return "".join("9" if ch.isdigit() else ch for ch in code)
