"""Place of service: a CMS place-of-service code, and a plausible one for the procedure (section 4).

Decision points:
- `POS_INVALID` checks membership in the CMS code set as shipped (`table.pos_codes`); the code is
  compared exactly as sent, so `2` or ` 11` is invalid (the set holds two-digit codes).
- `POS_NOT_ALLOWED` applies only to a valid code, and only to procedures the curated table
  restricts (`table.pos_allowed`); a procedure absent from it, including an invalid procedure
  code, is unrestricted. The curated sets are validator heuristics (billing-rules 4.3: no payer
  rule was found), which the catalogue reference says.
"""

from __future__ import annotations

from service.engine.findings import finding
from service.models.events import Claim, Finding
from service.ruletable.compiled import RuleTable

__all__ = ["RULE_IDS", "check"]

RULE_IDS: frozenset[str] = frozenset({"POS_INVALID", "POS_NOT_ALLOWED"})

_SHOWN = 8


def check(claim: Claim, table: RuleTable) -> list[Finding]:
    pos_codes = table.pos_codes
    pos_allowed = table.pos_allowed
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
        allowed = pos_allowed.get(line.procedure_code)
        if allowed is not None and pos not in allowed:
            places = ", ".join(sorted(allowed))
            out.append(
                finding(
                    table,
                    "POS_NOT_ALLOWED",
                    f"Line {line.line_number}: {line.procedure_code} is not expected at place of "
                    f"service {pos} ({pos_codes[pos]}); check where it was performed and bill "
                    f"one of the places it is accepted at: {places}.",
                    line,
                )
            )
    return out
