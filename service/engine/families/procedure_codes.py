"""Procedure code shape: every line must carry something that can be a CPT or HCPCS code.

Why a shape check and not a code list: the shipped tables cover add-ons, fee-schedule codes and
curated places of service, not every valid CPT/HCPCS code, so "unknown to the table" is not
"invalid". A code of the wrong *shape* can never be paid, and is usually a typing slip (a letter O
for a zero, a modifier glued on, lower case), so it is an error the biller can fix at once.

Accepted shapes (decision points):
- CPT Category I: five digits (`64490`, `99213`, `01991`), and the Category I codes that end in a
  letter: `A` (vaccine administration, `0001A`) and `M` (MAAA administrative codes, `0002M`).
  These two are wider than "4 digits + F/T/U": rejecting a real CPT code would be a false error.
- CPT Category II / III / PLA: four digits and `F`, `T` or `U` (`0001F`, `0213T`, `0001U`).
- HCPCS Level II: a letter `A`-`V` then four digits (`G0500`, `J1040`).
- Exactly as sent: lower case (`g0500`) and embedded modifiers (`64490-50`) are invalid, because
  every table the other families consult is keyed by the upper-case five-character code.

The shape is written once, with the table (`service.ruletable.compiled.is_procedure_code`), which
indexes the codes it names that have it (`RuleTable.procedure_codes`).

Other families skip what they cannot judge on such a line (no fee-schedule indicator, no add-on
edit, no place-of-service list matches an invalid code), so a bad code yields this one finding
rather than a cascade; code-independent checks (modifier syntax, place-of-service code) still run.
"""

from __future__ import annotations

import re

from service.engine.findings import finding
from service.models.events import Claim, Finding
from service.ruletable.compiled import RuleTable, is_procedure_code

__all__ = ["RULE_IDS", "check", "is_procedure_code"]

RULE_IDS: frozenset[str] = frozenset({"PROCEDURE_CODE_INVALID"})

_SHOWN = 8
"""At most this many characters of a bad code are echoed in a message."""


def check(claim: Claim, table: RuleTable) -> list[Finding]:
    known = table.procedure_codes  # a set hit is cheaper than the shape's regex
    out: list[Finding] = []
    for line in claim.service_lines:
        code = line.procedure_code
        if code in known or is_procedure_code(code):
            continue
        out.append(
            finding(
                table,
                "PROCEDURE_CODE_INVALID",
                f"Line {line.line_number}: procedure code {_show(code)} is not a CPT or HCPCS "
                f"code{_hint(code)}; enter the five-character code (5 digits, 4 digits + a letter "
                "A/F/M/T/U, or a letter A-V + 4 digits) and put modifiers in the modifier fields.",
                line,
            )
        )
    return out


def _show(code: str) -> str:
    return repr(code if len(code) <= _SHOWN else code[:_SHOWN] + "...")


def _hint(code: str) -> str:
    """A likely cause, when one is recognisable; empty otherwise."""
    upper = code.upper()
    if upper != code and is_procedure_code(upper):
        return f" (use upper case: {upper})"
    zeroed = upper.replace("O", "0")
    if zeroed != upper and is_procedure_code(zeroed):
        return f" (letter O instead of zero? {zeroed})"
    head = re.split(r"[-\s]", code, maxsplit=1)[0]
    if head != code and is_procedure_code(head):
        return f" (a modifier is attached to the code: bill {head} with the modifier separately)"
    return ""
