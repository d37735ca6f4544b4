"""Payer policies: coverage, level limits, expected and unexpected modifiers, same-date bundles.

Sources: billing-rules sections 1.4 (F-IMG-1/2), 3.1 (F-MOD-51), 5 (F-LCD-LEVELS, F-LCD-IMG,
F-KX, F-SED) and 6 (Aetna CPB 0016, UHC, Cigna), as effective-dated data in `payers.yaml`. The
payer is `claim.payer_id`, matched exactly; a payer not configured gets the national policies.

Decision points:
- A policy applies to a line when the line's date of service is within its effective dates.
- `PAYER_NONCOVERED`, `PAYER_MODIFIER_EXPECTED`, `MODIFIER_51_NOT_EXPECTED`: one finding per line
  (and policy). A non-covered line that carries GA, GZ, GY or GX is billed knowingly as
  non-covered (an advance notice on file, or a statutory exclusion): that is correct coding, so it
  gets `PAYER_NONCOVERED_NOTICE`, a warning that says so, instead of the error.
- `SEDATION_DOCUMENTATION`, `IMAGING_INCLUDED`: a finding on each sedation or imaging line that
  shares its date of service with one of the policy's procedures.
- `PAYER_LEVEL_LIMIT`: levels are counted per spinal region per date of service (a session is
  all procedures on one calendar day, billing-rules 5.5), or, for a limit `per: session` (Aetna),
  over every region of the date together. 64490/64491 and 64493/64494 count one
  level each whatever their units or modifiers (a bilateral level is one level, F-LEVEL); each
  unit of 64492/64495 ("third and any additional level") is one more level, an RT line and an LT
  line of it counting as one (the larger side). One finding, on the
  line where the count first passes the limit (lines in line-number order).
"""

from __future__ import annotations

from datetime import date

from service.engine.findings import finding
from service.models.events import Claim, Finding, ServiceLine
from service.ruletable.compiled import (
    CodePairing,
    LevelLimit,
    PayerRules,
    Policies,
    PolicyRef,
    RuleTable,
)

__all__ = ["RULE_IDS", "check"]

_NOTICE = ("GA", "GZ", "GY", "GX")
"""Modifiers that bill a line knowingly as non-covered (advance notice, statutory exclusion)."""

RULE_IDS: frozenset[str] = frozenset(
    {
        "PAYER_NONCOVERED",
        "PAYER_NONCOVERED_NOTICE",
        "PAYER_LEVEL_LIMIT",
        "PAYER_MODIFIER_EXPECTED",
        "MODIFIER_51_NOT_EXPECTED",
        "SEDATION_DOCUMENTATION",
        "IMAGING_INCLUDED",
    }
)


def check(claim: Claim, table: RuleTable) -> list[Finding]:
    policies = table.policies
    if policies is None:
        return []
    rules = policies.payer(claim.payer_id)
    line_rules = rules.line_rules
    modifier_51 = rules.modifier_51
    out: list[Finding] = []
    anchored = False
    levels = 0  # an upper bound of the levels on any one date and region
    for line in claim.service_lines:
        asked = line_rules.get(line.procedure_code)
        if asked is not None:  # a code no policy of the payer names skips to modifier 51
            if asked.same_date:
                anchored = True
            if asked.levels:
                levels += line.units if asked.levels == 2 else 1
            if asked.noncovered:
                for ref in asked.noncovered:
                    if ref.in_effect(line.service_date):
                        out.append(_noncovered(table, rules, line, ref))
            if asked.expected:
                for modifier, ref in asked.expected:
                    if modifier not in line.modifiers and ref.in_effect(line.service_date):
                        out.append(_modifier_expected(table, rules, line, modifier, ref))
        if modifier_51 and "51" in line.modifiers:
            out.extend(_modifiers_51(table, rules, line))
    over_levels = levels > rules.level_min and bool(rules.level_limits)
    if anchored or over_levels:
        out.extend(_same_date(table, policies, rules, claim, levels=over_levels))
    return out


def _modifiers_51(table: RuleTable, rules: PayerRules, line: ServiceLine) -> list[Finding]:
    """A finding per payer policy in effect that says the payer adds modifier 51 itself."""
    return [
        _modifier_51(table, rules, line, ref)
        for ref in rules.modifier_51
        if ref.in_effect(line.service_date)
    ]


def _same_date(
    table: RuleTable, policies: Policies, rules: PayerRules, claim: Claim, *, levels: bool
) -> list[Finding]:
    days: dict[date, list[ServiceLine]] = {}
    for line in claim.service_lines:
        days.setdefault(line.service_date, []).append(line)
    out: list[Finding] = []
    for day, lines in days.items():
        codes = {line.procedure_code for line in lines}
        for pairing in rules.sedation:
            out.extend(_pairing(table, "SEDATION_DOCUMENTATION", pairing, day, lines, codes))
        for pairing in rules.imaging:
            out.extend(_pairing(table, "IMAGING_INCLUDED", pairing, day, lines, codes))
        if levels:
            for limit in rules.level_limits:
                out.extend(_levels(table, policies, rules, limit, day, lines))
    return out


def _pairing(
    table: RuleTable,
    rule_id: str,
    pairing: CodePairing,
    day: date,
    lines: list[ServiceLine],
    codes: set[str],
) -> list[Finding]:
    if pairing.anchors.isdisjoint(codes) or pairing.procedures.isdisjoint(codes):
        return []
    if not pairing.policy.in_effect(day):
        return []
    with_ = [line for line in lines if line.procedure_code in pairing.procedures]
    others = ", ".join(f"{x.procedure_code} (line {x.line_number})" for x in with_)
    build = _sedation if rule_id == "SEDATION_DOCUMENTATION" else _imaging
    return [
        build(table, line, others, pairing.policy)
        for line in lines
        if line.procedure_code in pairing.anchors
    ]


def _levels(
    table: RuleTable,
    policies: Policies,
    rules: PayerRules,
    limit: LevelLimit,
    day: date,
    lines: list[ServiceLine],
) -> list[Finding]:
    if not limit.policy.in_effect(day):
        return []
    # Per code: [units without a side, RT units, LT units]; a code's levels are `one` -> 1,
    # `per_unit` -> unsided + the larger side (an RT line and an LT line are one level).
    sides: dict[str, list[int]] = {}
    out: list[Finding] = []
    for line in sorted(lines, key=lambda x: x.line_number):
        code = line.procedure_code
        region = limit.region_of.get(code)
        if region is None:
            continue
        before = _region_levels(limit, sides, region)
        counts = sides.setdefault(code, [0, 0, 0])
        mods = line.modifiers
        right, left = "RT" in mods, "LT" in mods
        counts[1 if right and not left else 2 if left and not right else 0] += line.units
        after = _region_levels(limit, sides, region)
        if before <= limit.max_levels < after:
            out.append(_level_limit(table, policies, rules, line, region, after, limit))
    return out


def _region_levels(limit: LevelLimit, sides: dict[str, list[int]], region: str) -> int:
    total = 0
    for code, (unsided, right, left) in sides.items():
        if limit.region_of[code] == region:
            total += unsided + max(right, left) if code in limit.per_unit else 1
    return total


def _cite(ref: PolicyRef) -> str:
    return f"{ref.policy_id}: {ref.title}"


def _noncovered(table: RuleTable, rules: PayerRules, line: ServiceLine, ref: PolicyRef) -> Finding:
    notice = [m for m in _NOTICE if m in line.modifiers]
    if notice:
        return finding(
            table,
            "PAYER_NONCOVERED_NOTICE",
            f"Line {line.line_number}: {rules.name} does not cover {line.procedure_code} on "
            f"{line.service_date.isoformat()} ({_cite(ref)}); the line carries "
            f"{', '.join(notice)}, so it is billed knowingly as non-covered: keep the signed "
            "advance notice on file.",
            line,
        )
    return finding(
        table,
        "PAYER_NONCOVERED",
        f"Line {line.line_number}: {rules.name} does not cover {line.procedure_code} on "
        f"{line.service_date.isoformat()} ({_cite(ref)}); remove the line, or bill it as a "
        "non-covered service the way the payer asks if the patient agreed in writing to pay.",
        line,
    )


def _modifier_expected(
    table: RuleTable, rules: PayerRules, line: ServiceLine, modifier: str, ref: PolicyRef
) -> Finding:
    return finding(
        table,
        "PAYER_MODIFIER_EXPECTED",
        f"Line {line.line_number}: {rules.name} expects modifier {modifier} on "
        f"{line.procedure_code} ({_cite(ref)}); add {modifier} if this was a diagnostic "
        "injection, and leave it off a therapeutic one.",
        line,
    )


def _modifier_51(table: RuleTable, rules: PayerRules, line: ServiceLine, ref: PolicyRef) -> Finding:
    return finding(
        table,
        "MODIFIER_51_NOT_EXPECTED",
        f"Line {line.line_number}: modifier 51 on {line.procedure_code}; {rules.name} adds 51 "
        f"itself ({_cite(ref)}); remove 51 from the line.",
        line,
    )


def _sedation(table: RuleTable, line: ServiceLine, others: str, ref: PolicyRef) -> Finding:
    return finding(
        table,
        "SEDATION_DOCUMENTATION",
        f"Line {line.line_number}: moderate sedation {line.procedure_code} is billed on the date "
        f"of facet injection {others}; routine sedation for these injections is not covered "
        f"({_cite(ref)}). Keep documentation of why sedation was needed, or remove the line.",
        line,
    )


def _imaging(table: RuleTable, line: ServiceLine, others: str, ref: PolicyRef) -> Finding:
    return finding(
        table,
        "IMAGING_INCLUDED",
        f"Line {line.line_number}: imaging guidance {line.procedure_code} is billed on the date "
        f"of {others}, whose code already includes image guidance ({_cite(ref)}); remove the "
        f"{line.procedure_code} line.",
        line,
    )


def _level_limit(
    table: RuleTable,
    policies: Policies,
    rules: PayerRules,
    line: ServiceLine,
    region: str,
    levels: int,
    limit: LevelLimit,
) -> Finding:
    if limit.per_session:
        what, per = "facet levels (all spinal regions)", "per session"
    else:
        what, per = f"{policies.region_labels[region]} facet levels", "per region per session"
    return finding(
        table,
        "PAYER_LEVEL_LIMIT",
        f"Line {line.line_number}: {levels} {what} on {line.service_date.isoformat()}, but "
        f"{rules.name} covers at most {limit.max_levels} {per} ({_cite(limit.policy)}); bill "
        "only the levels the policy covers, and reduce the units of the additional-level code.",
        line,
    )
