"""Diagnoses: the ICD-10-CM codes of the claim and the pointers that tie lines to them.

Sources: billing-rules 3.5 (F-X12-SV1: up to 12 diagnoses, no duplicates, up to 4 pointers per
line, each pointing to a diagnosis that exists) and 5.7 (F-DX-GEN, F-DX-M545, region heuristic).

Decision points:
- Code sets by date: every shipped ICD-10-CM edition (`icd10cm-2021jan-2023oct-2025apr-2026apr`
  in the table version) is in force on its own dates (FY N runs 1 October N-1 to 30 September N,
  April updates from 1 April). A diagnosis is judged on the service dates of the lines that
  point to it (all the claim's dates when none does), by the edition in force on each date.
- Between two shipped editions that bracket a date, a code billable in both is billable and one
  billable in neither is an error; billable in only one is `DIAGNOSIS_EDITION_UNCERTAIN`
  (warning): the edition in force that day is not shipped, so the validator cannot tell.
- A date before the first or after the last shipped edition: one `DIAGNOSIS_EDITION_NOT_SHIPPED`
  warning per claim, naming the codes the nearest edition would not accept; no guess is an
  error there. A code that is not even shaped like ICD-10-CM is invalid on any date.
- Written form: `M54.50` and `M5450` are the same code (X12 HI carries no dot; people write it).
  A dot anywhere but after the third character, lower case or spaces make the code invalid; the
  message then suggests the corrected form when that is a valid code.
- `DIAGNOSIS_INVALID`: not a code of the code set. `DIAGNOSIS_NOT_BILLABLE`: a valid category or
  subcategory that has children (M54.5 since FY2022); the message names billable codes under it.
- Diagnoses are claim-level, so their findings carry no line; pointer and region findings do.
- With no diagnosis at all only `DIAGNOSIS_MISSING` is reported, not one pointer error per line.
- `DIAGNOSIS_POINTER_INVALID`: once per line for a pointer outside 1..number of diagnoses, no
  pointer at all (SV1-07 needs one), or more than 4 pointers.
- `DIAGNOSIS_REGION_MISMATCH` (warning): a facet code whose pointed diagnoses that have a region
  (curated, `dx_regions.yaml`) are all of the other region. Diagnoses without a region (chronic
  pain, thoracolumbar codes) neither cause nor prevent the warning.
- A diagnosis costs one look-up in the region map and one in `written` (every code billable in
  every shipped edition, as it may be written), or for a newer code one in `spans` (the editions
  it is billable in, as days): a claim whose lines share a day inside them needs no more. The
  dated questions (which edition? heading or invalid? duplicate?) are asked only of a code or a
  claim that needs them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date

from service.engine.families.diagnosis_dates import dated_findings
from service.engine.findings import finding
from service.models.events import Claim, Finding, ServiceLine
from service.ruletable.compiled import Policies, RuleTable, icd_display, icd_key

__all__ = ["MAX_DIAGNOSES", "MAX_POINTERS", "RULE_IDS", "check"]

RULE_IDS: frozenset[str] = frozenset(
    {
        "DIAGNOSIS_MISSING",
        "DIAGNOSIS_INVALID",
        "DIAGNOSIS_NOT_BILLABLE",
        "DIAGNOSIS_DUPLICATE",
        "DIAGNOSIS_TOO_MANY",
        "DIAGNOSIS_POINTER_INVALID",
        "DIAGNOSIS_REGION_MISMATCH",
        "DIAGNOSIS_EDITION_UNCERTAIN",
        "DIAGNOSIS_EDITION_NOT_SHIPPED",
    }
)

MAX_DIAGNOSES = 12
"""837P HI segment, loop 2300: HI-01 to HI-12 (F-X12-SV1)."""
MAX_POINTERS = 4
"""837P SV1-07 composite C004: up to 4 diagnosis code pointers (F-X12-SV1)."""


_POINTER_SETS: tuple[frozenset[int], ...] = tuple(
    frozenset(range(1, n + 1)) for n in range(MAX_DIAGNOSES + 1)
)
"""Valid pointers for a claim with n diagnoses: a subset test replaces min/max per line."""
_QUICK_DIAGNOSES = 4
_POINTER_TUPLES: tuple[frozenset[tuple[int, ...]], ...] = tuple(
    frozenset(
        pointers
        for length in range(1, MAX_POINTERS + 1)
        for pointers in itertools.product(range(1, n + 1), repeat=length)
    )
    for n in range(_QUICK_DIAGNOSES + 1)
)
"""Every valid pointer list of a line for a claim with n <= 4 diagnoses (340 at most): one set
hit per line for the usual claim; the subset test above answers the rest."""


def check(claim: Claim, table: RuleTable) -> list[Finding]:
    policies = table.policies
    if policies is None:
        return []
    codes = claim.diagnosis_codes
    count = len(codes)
    if count == 0:
        return [_missing(table)]
    out: list[Finding] = []
    icd = policies.icd10cm
    written, regional, dx_region = icd.written, policies.regional, policies.dx_region
    keys: list[str] = []
    regions: list[str | None] = []
    first: str | None = None  # the region of the first diagnosis that has one
    mixed = False  # some other diagnosis has another region than `first`
    dated: list[int] = []  # positions of codes not billable in every edition: judged by date
    spanned: list[tuple[int, date, date]] = []  # (position, days billable): dated if outside
    region: str | None
    for code in codes:
        hit = regional.get(code)
        if hit is not None:
            key, region = hit
        else:
            found = written.get(code)
            if found is None:
                span = icd.spans.get(code)
                if span is None:
                    dated.append(len(keys) + 1)
                    key = icd_key(code)
                else:
                    key, since, until = span
                    spanned.append((len(keys) + 1, since, until))
                region = dx_region.get(key)
            else:
                key, region = found, None  # `regional` holds every stable code with a region
        keys.append(key)
        regions.append(region)
        if region is not None and region != first:
            if first is None:
                first = region
            else:
                mixed = True
    if count > 1 and (keys[0] == keys[1] if count == 2 else len(set(keys)) != count):
        out.extend(_duplicates(table, codes, keys))
    if count > MAX_DIAGNOSES:
        out.append(_too_many(table, count))
        valid = frozenset(range(1, count + 1))
    else:
        valid = _POINTER_SETS[count]
    quick = _POINTER_TUPLES[count] if count <= _QUICK_DIAGNOSES else _POINTER_TUPLES[0]
    procedure_region = policies.procedure_region
    lines = claim.service_lines
    single: date | None = lines[0].service_date  # the date of every line, while they share one
    for line in lines:
        if line.service_date != single:
            single = None
        pointers = line.diagnosis_pointers
        if pointers not in quick and (
            not pointers or len(pointers) > MAX_POINTERS or not valid.issuperset(pointers)
        ):
            out.append(_pointer(table, line, count))
            continue
        if first is None:
            continue  # no diagnosis has a region: nothing to mismatch
        facet = procedure_region.get(line.procedure_code)
        if facet is None or (facet == first and not mixed):
            continue  # not a facet code, or every regional diagnosis is of its region
        if _mismatch(facet, pointers, regions):
            other = [p for p in pointers if regions[p - 1] is not None]
            out.append(_region(table, policies, line, facet, keys, other))
    earliest, latest = icd.first, icd.last
    if single is not None:  # a line dated where no shipped edition judges it?
        outside = single < earliest or single > latest
    else:
        outside = any(ln.service_date < earliest or ln.service_date > latest for ln in lines)
    if spanned:
        for position, since, until in spanned:  # billable on every day of the claim, or dated
            if single is None or single < since or single > until:
                dated.append(position)
        dated.sort()
    if dated or outside:
        out.extend(dated_findings(table, icd, claim, keys, dated, outside, single))
    return out


def _mismatch(region: str, pointers: tuple[int, ...], regions: Sequence[str | None]) -> bool:
    """The pointed diagnoses that have a region are all of another one (and there is one)."""
    other = False
    for p in pointers:
        found = regions[p - 1]
        if found == region:
            return False
        if found is not None:
            other = True
    return other


def _missing(table: RuleTable) -> Finding:
    return finding(
        table,
        "DIAGNOSIS_MISSING",
        "The claim has no diagnosis code; add the ICD-10-CM code(s) that support the services "
        "(up to 12) and point each line to them.",
    )


def _duplicates(table: RuleTable, codes: Sequence[str], keys: Sequence[str]) -> list[Finding]:
    first: dict[str, int] = {}
    out: list[Finding] = []
    for position, key in enumerate(keys, start=1):
        if key not in first:
            first[key] = position
            continue
        out.append(
            finding(
                table,
                "DIAGNOSIS_DUPLICATE",
                f"Diagnosis {position} {codes[position - 1]!r} repeats diagnosis {first[key]}; "
                f"list each code once and point the lines to position {first[key]}.",
            )
        )
    return out


def _too_many(table: RuleTable, count: int) -> Finding:
    return finding(
        table,
        "DIAGNOSIS_TOO_MANY",
        f"The claim has {count} diagnosis codes; a professional claim carries at most "
        f"{MAX_DIAGNOSES}. Keep the {MAX_DIAGNOSES} that support the services billed, or split the "
        "claim.",
    )


def _pointer(table: RuleTable, line: ServiceLine, count: int) -> Finding:
    pointers = line.diagnosis_pointers
    problems: list[str] = []
    if not pointers:
        problems.append("it points to no diagnosis")
    bad = [p for p in pointers if p < 1 or p > count]
    if bad:
        listed = ", ".join(str(p) for p in bad)
        problems.append(f"pointer {listed} names no diagnosis (the claim has {count})")
    if len(pointers) > MAX_POINTERS:
        problems.append(f"it has {len(pointers)} pointers, more than {MAX_POINTERS}")
    return finding(
        table,
        "DIAGNOSIS_POINTER_INVALID",
        f"Line {line.line_number}: {'; '.join(problems)}; point the line to 1 to {MAX_POINTERS} "
        f"of the claim's diagnoses by their position (1 to {count}).",
        line,
    )


def _region(
    table: RuleTable,
    policies: Policies,
    line: ServiceLine,
    region: str,
    keys: Sequence[str],
    pointers: list[int],
) -> Finding:
    label = policies.region_labels[region]
    labels, dx_region = policies.region_labels, policies.dx_region
    pointed = ", ".join(
        f"{p} {icd_display(keys[p - 1])} ({labels[dx_region[keys[p - 1]]]})" for p in pointers
    )
    return finding(
        table,
        "DIAGNOSIS_REGION_MISMATCH",
        f"Line {line.line_number}: {line.procedure_code} is a {label} facet procedure but its "
        f"diagnoses are of another spinal region (diagnosis {pointed}); point the line to the "
        f"{label} diagnosis that supports it, or correct the procedure code.",
        line,
    )
