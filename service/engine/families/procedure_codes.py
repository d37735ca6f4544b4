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

Dates and payability (decision points):
- `PROCEDURE_CODE_DELETED` (error): the line's date is after the last day CMS says the code was
  in use (the AOC file's `AOC_DelDT` for an add-on, `Primary_Code_DelDT` for a primary); the
  message names the file and column.
- `PROCEDURE_CODE_NOT_YET_IN_EFFECT` (warning): before an add-on's first AOC edit row dated
  after the file's first edits. That start is inferred (a code may exist before CMS edits it as
  an add-on), so it is never an error.
- `PROCEDURE_STATUS_NOT_PAYABLE` (error): for a payer that applies Medicare's fee-schedule status
  (`national_edits.mpfs_status`, MEDICARE), a code of a status Medicare never pays (I, N, B in
  `fee_status.yaml`); the message names the code Medicare uses instead when the table knows it
  (G2212 for 99417). GY/GX on a status N line say it is billed for a denial: no finding.

Other families skip what they cannot judge on such a line (no fee-schedule indicator, no add-on
edit, no place-of-service list matches an invalid code), so a bad code yields this one finding
rather than a cascade; code-independent checks (modifier syntax, place-of-service code) still run.
"""

from __future__ import annotations

import re

from service.engine.findings import finding
from service.models.events import Claim, Finding, ServiceLine
from service.ruletable.compiled import CodeWindow, NotPayable, RuleTable, is_procedure_code

__all__ = ["RULE_IDS", "check", "is_procedure_code"]

RULE_IDS: frozenset[str] = frozenset(
    {
        "PROCEDURE_CODE_INVALID",
        "PROCEDURE_CODE_DELETED",
        "PROCEDURE_CODE_NOT_YET_IN_EFFECT",
        "PROCEDURE_STATUS_NOT_PAYABLE",
    }
)

_SHOWN = 8
"""At most this many characters of a bad code are echoed in a message."""


def check(claim: Claim, table: RuleTable) -> list[Finding]:
    known = table.procedure_codes  # a set hit is cheaper than the shape's regex
    watch = table.code_watch
    out: list[Finding] = []
    for line in claim.service_lines:
        code = line.procedure_code
        if code in known or is_procedure_code(code):
            if code in watch:
                _watched(claim, table, line, out)
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


def _watched(claim: Claim, table: RuleTable, line: ServiceLine, out: list[Finding]) -> None:
    """A code with a known window of use, or a status Medicare never pays."""
    window = table.code_windows.get(line.procedure_code)
    if window is not None:
        _dated(table, line, window, out)
    why = table.not_payable.get(line.procedure_code)
    if why is None or not why.exempt.isdisjoint(line.modifiers):
        return
    policies = table.policies
    if policies is not None and policies.payer(claim.payer_id).mpfs_status:
        out.append(_not_payable(table, line, why))


def _dated(table: RuleTable, line: ServiceLine, window: CodeWindow, out: list[Finding]) -> None:
    on = line.service_date
    if window.last is not None and on > window.last:
        out.append(
            finding(
                table,
                "PROCEDURE_CODE_DELETED",
                f"Line {line.line_number}: {line.procedure_code} was deleted: its last day in use "
                f"was {window.last.isoformat()} ({window.last_source}), before the date of "
                f"service {on.isoformat()}; bill the code that replaced it on that date.",
                line,
            )
        )
    elif window.first is not None and on < window.first:
        out.append(
            finding(
                table,
                "PROCEDURE_CODE_NOT_YET_IN_EFFECT",
                f"Line {line.line_number}: {line.procedure_code} is dated {on.isoformat()}, "
                f"before {window.first.isoformat()}, when CMS first edited it as an add-on "
                f"({window.first_source}); check that the code existed on that date.",
                line,
            )
        )


def _not_payable(table: RuleTable, line: ServiceLine, why: NotPayable) -> Finding:
    instead = f"; Medicare uses {why.use} instead" if why.use else ""
    exempt = (
        f", or add {' or '.join(sorted(why.exempt))} if it is billed for a denial"
        if why.exempt
        else ""
    )
    return finding(
        table,
        "PROCEDURE_STATUS_NOT_PAYABLE",
        f"Line {line.line_number}: {line.procedure_code} has fee-schedule status {why.status} "
        f"in {why.source} ({why.meaning}){instead}, so Medicare does not pay it; bill the code "
        f"Medicare pays for the service, or remove the line{exempt}.",
        line,
    )


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
