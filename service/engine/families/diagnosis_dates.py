"""Diagnoses judged by the ICD-10-CM edition in force on the date of service.

Part of the diagnoses family (service.engine.families.diagnoses), which calls it only for a
code not billable in every shipped edition, or a claim with a date no shipped edition covers.
How editions are chosen and when a finding is an error or a warning: see that module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from service.engine.findings import finding
from service.models.events import Claim, Finding
from service.ruletable.compiled import DiagnosisCodeSet, RuleTable, icd_display, icd_key

__all__ = ["dated_findings"]

_SHAPE = re.compile(r"[A-Z][0-9A-Z]{2}[0-9A-Z]{0,4}")
"""An ICD-10-CM code without its dot: not this shape, not a code on any date."""
_SHOWN = 12
_DATES_SHOWN = 3


def dated_findings(
    table: RuleTable,
    icd: DiagnosisCodeSet,
    claim: Claim,
    keys: Sequence[str],
    dated: Sequence[int],
    outside: bool,
    single: date | None,
) -> list[Finding]:
    """Findings for the diagnoses at `dated` (1-based positions), and the claim-level warning
    when some line is `outside` every shipped edition; `single`: the date of every line, when
    they share one."""
    codes = claim.diagnosis_codes
    out: list[Finding] = []
    for position in dated:
        written, key = codes[position - 1], keys[position - 1]
        verdicts = icd.verdicts.get(key)
        if verdicts is None:
            if not _SHAPE.fullmatch(key):
                out.append(_invalid(table, icd, position, written, None, ()))
                continue
            verdicts = _ABSENT  # shaped like a code, but in no shipped edition
        worst: tuple[str, date, int] | None = None
        for day in (single,) if single is not None else _dates_of(claim, position):
            index = icd.slot_index(day)
            if index < 0:
                continue  # the claim-level warning covers it
            verdict = verdicts[index]
            if verdict in "h.":
                worst = (verdict, day, index)
                break
            if verdict == "u" and worst is None:
                worst = (verdict, day, index)
        if worst is None:
            continue
        verdict, day, index = worst
        slot = icd.slot_editions(index)
        if verdict == "u":
            out.append(_uncertain(table, icd, position, key, day, index, slot))
        elif verdict == "h":
            out.append(_not_billable(table, icd, position, key, day, slot))
        else:
            out.append(_invalid(table, icd, position, written, day, slot))
    if outside:
        out.append(_not_shipped(table, icd, claim, keys))
    return out


_ABSENT = "." * 64
"""The verdicts of a code in no edition: `.` at every slot index."""


def _dates_of(claim: Claim, position: int) -> list[date]:
    """The dates of the lines pointing to `position`, else every line's date; sorted."""
    pointing = {ln.service_date for ln in claim.service_lines if position in ln.diagnosis_pointers}
    if not pointing:
        pointing = {ln.service_date for ln in claim.service_lines}
    return sorted(pointing)


def _editions(icd: DiagnosisCodeSet, on: date | None, slot: tuple[int, ...]) -> str:
    """Which edition judged `on`, as message text."""
    if on is None or not slot:
        return "any edition (it is not shaped like one)"
    if len(slot) == 1:
        return f"{icd.editions[slot[0]].label}, the code set in force on {on.isoformat()}"
    a, b = (icd.editions[i].label for i in slot)
    return f"{a} or {b}, the editions shipped either side of {on.isoformat()}"


def _invalid(
    table: RuleTable,
    icd: DiagnosisCodeSet,
    position: int,
    written: str,
    on: date | None,
    slot: tuple[int, ...],
) -> Finding:
    shown = repr(written if len(written) <= _SHOWN else written[:_SHOWN] + "...")
    fixed = icd_key(written.strip().upper())
    hint = ""
    if fixed != icd_key(written) and fixed in icd.flags:
        hint = f" (did you mean {icd_display(fixed)}?)"
    return finding(
        table,
        "DIAGNOSIS_INVALID",
        f"Diagnosis {position} {shown} is not an ICD-10-CM code in {_editions(icd, on, slot)}"
        f"{hint}; write a valid code of that date in upper case, with or without the dot after "
        "the third character.",
    )


def _not_billable(
    table: RuleTable,
    icd: DiagnosisCodeSet,
    position: int,
    key: str,
    on: date,
    slot: tuple[int, ...],
) -> Finding:
    under = icd.billable_under(key, slot[-1])
    more = f" such as {', '.join(under)}" if under else ""
    return finding(
        table,
        "DIAGNOSIS_NOT_BILLABLE",
        f"Diagnosis {position} {icd_display(key)} is an ICD-10-CM heading with more specific "
        f"codes under it, so it is not billable in {_editions(icd, on, slot)}; code to the "
        f"highest specificity, with a billable code{more}.",
    )


def _uncertain(
    table: RuleTable,
    icd: DiagnosisCodeSet,
    position: int,
    key: str,
    on: date,
    index: int,
    slot: tuple[int, ...],
) -> Finding:
    flags = icd.flags[key]
    said = icd.said[(index, flags[slot[0] : slot[-1] + 1])]
    return finding(
        table,
        "DIAGNOSIS_EDITION_UNCERTAIN",
        f"Diagnosis {position} {icd_display(key)} on {on.isoformat()}: {said}",
    )


def _not_shipped(
    table: RuleTable, icd: DiagnosisCodeSet, claim: Claim, keys: Sequence[str]
) -> Finding:
    early = sorted({ln.service_date for ln in claim.service_lines if ln.service_date < icd.first})
    late = sorted({ln.service_date for ln in claim.service_lines if ln.service_date > icd.last})
    dates = [*early, *late]
    shown = ", ".join(d.isoformat() for d in dates[:_DATES_SHOWN])
    if len(dates) > _DATES_SHOWN:
        shown += f" and {len(dates) - _DATES_SHOWN} more"
    nearest = 0 if early else -1
    near = icd.editions[nearest]
    missing = [
        icd_display(k)
        for k in dict.fromkeys(keys)
        if (flags := icd.flags.get(k)) is None or flags[nearest] != "b"
    ]
    judged = (
        f"; in {near.label}, the nearest, {', '.join(missing[:_DATES_SHOWN])} "
        f"{'is' if len(missing) == 1 else 'are'} not billable"
        if missing
        else f"; every diagnosis is billable in {near.label}, the nearest"
    )
    return finding(
        table,
        "DIAGNOSIS_EDITION_NOT_SHIPPED",
        f"Service date {shown} is outside the ICD-10-CM editions the rule table ships "
        f"({icd.first.isoformat()} to {icd.last.isoformat()}), so the diagnoses were not judged "
        f"for it{judged}; check them against the code set of that date.",
    )
