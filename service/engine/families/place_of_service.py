"""Place of service: a CMS place-of-service code, and a plausible one for the procedure (section 4).

Decision points:
- `POS_INVALID` checks membership in the CMS code set as shipped (`table.pos_codes`); the code is
  compared exactly as sent, so `2` or ` 11` is invalid (the set holds two-digit codes).
- The curated places of service per procedure (`table.pos_allowed`) are a validator heuristic
  (billing-rules 4.3: no payer rule was found), so a valid place outside them is `POS_UNLIKELY`,
  a warning. It is `POS_NOT_ALLOWED`, an error, only where the curated data cites a rule that
  forbids that place (`table.pos_ruled_out`, e.g. a needle procedure at telehealth POS 02/10).
- `POS_VISIT_SETTING`: a visit family whose definition names its setting (inpatient/observation,
  office, emergency department visits, `visits.yaml`) billed at a place that definition excludes;
  each family carries its CMS source, which the finding names. Places not listed are accepted.
- A procedure absent from the curated data, including an invalid code, is unrestricted.
"""

from __future__ import annotations

from service.engine.findings import finding
from service.models.events import Claim, Finding, ServiceLine
from service.ruletable.compiled import RuleTable

__all__ = ["RULE_IDS", "check"]

RULE_IDS: frozenset[str] = frozenset(
    {"POS_INVALID", "POS_NOT_ALLOWED", "POS_UNLIKELY", "POS_VISIT_SETTING"}
)

_SHOWN = 8


def check(claim: Claim, table: RuleTable) -> list[Finding]:
    pos_codes = table.pos_codes
    flagged = table.pos_flagged
    visits = table.visits
    out: list[Finding] = []
    for line in claim.service_lines:
        pos = line.place_of_service
        if pos not in pos_codes:
            shown = repr(pos if len(pos) <= _SHOWN else pos[:_SHOWN] + "...")
            out.append(
                finding(
                    table,
                    "POS_INVALID",
                    f"Line {line.line_number}: place of service {shown} is not in the CMS "
                    "place-of-service code set; enter the two-digit code of where the service "
                    "was performed (for example 11 office, 22 on-campus outpatient hospital, "
                    "24 ambulatory surgical center).",
                    line,
                )
            )
            continue
        code = line.procedure_code
        bad = flagged.get(code)
        if bad is None or pos not in bad:
            continue
        allowed = table.pos_allowed.get(code)
        if allowed is not None and pos not in allowed:
            out.append(_outside(table, line, allowed))
        setting = visits.setting_of.get(code) if visits is not None else None
        if setting is not None and pos in setting.forbidden:
            out.append(
                finding(
                    table,
                    "POS_VISIT_SETTING",
                    f"Line {line.line_number}: {code} is a {setting.label} code, but place of "
                    f"service {pos} ({pos_codes[pos]}) is not such a setting: {setting.reason} "
                    f"Source: {setting.reference.rstrip('.')}. Bill the visit code of the "
                    "setting, or correct the place of service.",
                    line,
                )
            )
    return out


def _outside(table: RuleTable, line: ServiceLine, allowed: frozenset[str]) -> Finding:
    pos, code = line.place_of_service, line.procedure_code
    places = ", ".join(sorted(allowed))
    rule = table.pos_ruled_out.get(code, {}).get(pos)
    text = (
        f"Line {line.line_number}: {code} is not expected at place of service {pos} "
        f"({table.pos_codes[pos]}); check where it was performed and bill one of the places it "
        f"is accepted at: {places}."
    )
    if rule is not None:
        return finding(table, "POS_NOT_ALLOWED", text, line)
    return finding(
        table,
        "POS_UNLIKELY",
        text + " This is a validator heuristic, not a payer rule: keep the place if it is right.",
        line,
    )
