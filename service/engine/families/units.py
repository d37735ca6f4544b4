"""Units: units of service above the limit for the code (CMS Medically Unlikely Edits).

Sources: billing-rules section 2 (F-MUE-1, F-MUE-MAI, F-MUE-BILAT, F-MUE-0, 2.3).

Decision points:
- The limit and its adjudication come from the MUE table of the rule table (`mue.csv`): the CMS
  practitioner file once imported (it replaces every shipped row), else curated limits where
  the code's own definition fixes the units (one visit per line, initial services, panels,
  sessions; 64490-64495 1 unit per date, UNCONFIRMED as MUE values). Codes without a row are not
  limited. Each finding names the row's rationale and the table's source.
- MAI 1 (line edit): each line's units against the limit. MAI 2 and 3 (date-of-service edits):
  the units of every line of the code on one date by one rendering practitioner (a line's
  `rendering_provider_npi`, else the claim's) are summed; one finding, on the first of those
  lines, names all of them (CMS denies all of that day's units of the code). Per practitioner
  because an MUE is the units a practitioner would report for a beneficiary on a date of service
  (CMS MUE definition; First Coast "Medically Unlikely Edits: avoid denials"), and two
  practitioners of one group may each bill the code that day: the attending (AI) and a consultant
  each bill initial hospital care (MLN Matters MM6740), physicians of different specialties each
  bill critical care (Medicare Claims Processing Manual ch. 12 section 30.6.12).
- A bilateral service is one line, modifier 50, 1 unit (F-MUE-BILAT), so modifier 50 does not
  double the count. For a payer configured for RT/LT split lines (`payers.yaml`
  `bilateral_format: rt_lt`) an RT line and an LT line are the two sides of one service: the day
  counts the units without a side plus the larger of the RT and LT sums.
- Payers whose `national_edits.mue` is false get no MUE findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType

from service.engine.findings import finding
from service.models.events import Claim, Finding, ServiceLine
from service.ruletable.compiled import MueLimit, RuleTable

__all__ = ["RULE_IDS", "check"]

RULE_IDS: frozenset[str] = frozenset({"UNITS_EXCEED_LIMIT"})

_MAI_TEXT = MappingProxyType({
    1: "per line (MUE adjudication indicator 1)",
    2: "per date of service (MUE adjudication indicator 2, policy: modifiers do not bypass it)",
    3: "per date of service (MUE adjudication indicator 3, clinical)",
})


def check(claim: Claim, table: RuleTable) -> list[Finding]:
    policies = table.policies
    if policies is None:
        return []
    rules = policies.payer(claim.payer_id)
    if not rules.mue_edits:
        return []
    limits = policies.mue
    out: list[Finding] = []
    # A date-of-service limit needs a sum only when a code repeats; until then each line's units
    # are its day's units, so the common claim never builds the (code, date) groups.
    seen: set[str] | None = None
    over: list[tuple[MueLimit, ServiceLine]] | None = None
    repeated = False
    for line in claim.service_lines:
        code = line.procedure_code
        limit = limits.get(code)
        if limit is None:
            continue
        units = line.units
        if limit.mai == 1:
            if units > limit.limit:
                out.append(_exceeds(table, limit, line, (line,), units, policies.mue_reference))
            continue
        if seen is None:
            seen = {code}
        elif code in seen:
            repeated = True
        else:
            seen.add(code)
        if units > limit.limit:
            if over is None:
                over = []
            over.append((limit, line))
    if repeated:
        out.extend(_per_date(table, claim, limits, rules.split_lines, policies.mue_reference))
    elif over is not None:
        for limit, line in over:
            out.append(_exceeds(table, limit, line, (line,), line.units, policies.mue_reference))
    return out


def _per_date(
    table: RuleTable,
    claim: Claim,
    limits: Mapping[str, MueLimit],
    split: bool,
    source: str,
) -> list[Finding]:
    npi = claim.rendering_provider.npi
    days: dict[tuple[str, date, str], list[ServiceLine]] = {}
    for line in claim.service_lines:
        limit = limits.get(line.procedure_code)
        if limit is not None and limit.mai != 1:
            key = (line.procedure_code, line.service_date, line.rendering_provider_npi or npi)
            days.setdefault(key, []).append(line)
    out: list[Finding] = []
    for (code, _, _), lines in days.items():
        limit = limits[code]
        total = lines[0].units if len(lines) == 1 else _day_units(lines, split)
        if total > limit.limit:
            out.append(_exceeds(table, limit, lines[0], lines, total, source))
    return out


def _day_units(lines: list[ServiceLine], split_lines: bool) -> int:
    if not split_lines:
        return sum(line.units for line in lines)
    unsided = right = left = 0
    for line in lines:
        mods = line.modifiers
        if "RT" in mods and "LT" not in mods:
            right += line.units
        elif "LT" in mods and "RT" not in mods:
            left += line.units
        else:
            unsided += line.units
    return unsided + max(right, left)


def _exceeds(
    table: RuleTable,
    limit: MueLimit,
    line: ServiceLine,
    lines: tuple[ServiceLine, ...] | list[ServiceLine],
    total: int,
    source: str,
) -> Finding:
    code = line.procedure_code
    if limit.mai == 1:
        where = f"{total} units on this line"
        fix = (
            "reduce the units, or report a separate site or session on its own line with the "
            "modifier that documents it (59/XS, RT/LT)"
        )
    else:
        numbers = ", ".join(str(x.line_number) for x in lines)
        where = (
            f"{total} units on {line.service_date.isoformat()} "
            f"({'line' if len(lines) == 1 else 'lines'} {numbers})"
        )
        fee = table.fee.get(code)
        if limit.limit == 0:
            fix = "remove the code: an MUE of 0 means it is not payable for this provider"
        elif fee is not None and fee.bilateral == "1":
            fix = (
                "bill a bilateral service once, on one line with modifier 50 and 1 unit, and "
                "reduce the units to what was done"
            )
        else:
            fix = "reduce the units to what was done"
        if limit.mai == 3:
            fix += "; if more was medically necessary, keep the records to support an appeal"
    return finding(
        table,
        "UNITS_EXCEED_LIMIT",
        f"Line {line.line_number}: {code} is billed for {where}, above its limit of "
        f"{limit.limit} {_MAI_TEXT[limit.mai]}; {fix}. Rationale: {limit.rationale}. "
        f"Limit source: {source}.",
        line,
    )
