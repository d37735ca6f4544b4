"""The decision-for-surgery modifier 57 belongs to major procedures only (modifiers family).

Sources: Medicare Claims Processing Manual ch. 12 section 30.6.6 (an E/M on the day of or the
day before a procedure with a 90-day global period that led to the decision to operate is paid
with 57; on the day of a procedure with a 0- or 10-day global period the decision is part of the
procedure, and a significant, separately identifiable E/M takes 25) and section 40.1 (global
surgery package); MLN Global Surgery Booklet MLN907166 (major = 090, minor = 000/010).

Decision points:
- Only for payers whose `payers.yaml` entry applies Medicare's global surgery rules
  (`national_edits.global_surgery`, MEDICARE): CPT itself does not tie 57 to a global period,
  and a commercial payer decides from its own policy.
- `MODIFIER_57_MINOR_PROCEDURE` (error): an E/M line (the `visits.yaml` E/M codes) with 57, when
  the same practitioner (a line's `rendering_provider_npi`, else the claim's) has, on this
  claim, a procedure of global period 000 or 010 on the visit's date and no procedure of global
  period 090 on that date or the next. A claim with no procedure of that practitioner near the
  visit is not judged (the surgery may be on another claim), nor are codes without a fee-schedule
  row or with another global period (MMM, XXX, YYY, ZZZ).
- A visit with both 57 and 25 is not judged: on a day with a major and a minor procedure both
  belong on it, and the major procedure may be billed on another claim.
- The modifiers family, which reads every line's modifiers anyway, hands in the E/M lines that
  carry 57, so a claim without one costs nothing here.
"""

from __future__ import annotations

from service.engine.findings import finding
from service.models.events import Claim, Finding, ServiceLine
from service.ruletable.compiled import RuleTable

__all__ = ["RULE_ID", "judge_decisions"]

RULE_ID = "MODIFIER_57_MINOR_PROCEDURE"

_MINOR = frozenset({"000", "010"})
_MAJOR = "090"


def judge_decisions(
    claim: Claim, table: RuleTable, visits: list[ServiceLine]
) -> list[Finding]:
    """Findings for the E/M lines with 57 (`visits`) that decide only a minor procedure."""
    policies = table.policies
    if policies is None or not policies.payer(claim.payer_id).global_surgery:
        return []
    out: list[Finding] = []
    for line in visits:
        if "25" in line.modifiers:
            continue
        minor = _minor_only(claim, table, line)
        if minor is not None:
            out.append(_finding(table, line, minor))
    return out


def _minor_only(claim: Claim, table: RuleTable, visit: ServiceLine) -> ServiceLine | None:
    """The first minor procedure of the visit's practitioner on its date, unless a major
    procedure of that practitioner is on that date or the next."""
    default_npi = claim.rendering_provider.npi
    npi = visit.rendering_provider_npi or default_npi
    on = visit.service_date
    fee = table.fee
    minor: ServiceLine | None = None
    for other in claim.service_lines:
        if other is visit or (other.rendering_provider_npi or default_npi) != npi:
            continue
        indicators = fee.get(other.procedure_code)
        if indicators is None:
            continue
        days = (other.service_date - on).days
        if indicators.global_days == _MAJOR and days in (0, 1):
            return None
        if minor is None and days == 0 and indicators.global_days in _MINOR:
            minor = other
    return minor


def _finding(table: RuleTable, visit: ServiceLine, minor: ServiceLine) -> Finding:
    days = table.fee[minor.procedure_code].global_days
    return finding(
        table,
        RULE_ID,
        f"Line {visit.line_number}: modifier 57 (decision for surgery) is on visit "
        f"{visit.procedure_code}, but the procedure that day, {minor.procedure_code} on line "
        f"{minor.line_number}, has a {days}-day global period (a minor procedure, whose "
        "decision is part of it); use 25 for a significant, separately identifiable visit, or "
        "remove 57.",
        visit,
    )
