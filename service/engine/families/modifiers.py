"""Modifiers: line-format limits, pairs that contradict each other, and fee-schedule indicators.

Sources: billing-rules section 3 (F-X12-MOD, F-MOD-51, F-BILAT-DEF, F-MOD-50, F-MOD-X, F-PCTC0).

Decision points:
- Valid shape (`MODIFIER_INVALID`). A modifier is two upper-case characters (X12 C003, AN 2/2):
  two digits (CPT: 22, 50, 59), or a letter then a letter or digit (HCPCS Level II: KX, RT, F1,
  XS), or a digit then P for the CPT Category II modifiers 1P, 2P, 3P, 8P. So `5O` (letter O for
  a zero), `kx` and `ABC` are invalid. No authoritative list of modifiers ships (billing-rules
  3.6), so a well-shaped but unknown modifier is not flagged. One finding per line names every
  bad modifier on it; the same goes for duplicates.
- `MODIFIER_TOO_MANY`: more than 4 on a line (SV1-01 carries C003-03..06); the other checks still
  run, so the biller sees every problem at once.
- Indicator checks (50, 26/TC) use the fee-schedule row of the code; a code without one (unknown
  or invalid) is not judged. `MODIFIER_51_ON_ADDON` uses the AOC file as the definition of an
  add-on on the line's date of service, like the pairing family, so a deleted add-on is not one.
- `MODIFIER_50_NOT_ALLOWED` fires for bilateral indicator 0, 2 or 9; 1 and 3 accept 50. It is
  reported once per line even if 50 is repeated (that repetition is `MODIFIER_DUPLICATE`).
  Indicator 2 stays a Medicare rule: a payer whose `payers.yaml` entry lists the code under
  `modifier_50_follows_cpt` follows CPT for it, and 50 is accepted there.
- `MODIFIER_50_UNITS`: 50 with more than 1 unit (a bilateral service is 1 unit, F-MOD-50).
  `MODIFIER_RT_LT_SAME_LINE`: RT and LT on one line (a bilateral service is 50 alone).
- `MODIFIER_PCTC_NOT_ALLOWED` follows every PC/TC indicator (`RuleTable.pctc_refused`): 0, 2, 3,
  4, 5 and 9 take neither 26 nor TC, 6 and 8 not TC; 1 takes both and 7 is not judged.
- `MODIFIER_EM_ONLY`: 25 or 57 on a code outside the E/M families of `visits.yaml`.
  `MODIFIER_59_ON_EM`: 59 or XE/XP/XS/XU on an E/M code. Without a `visits` table (hand-built
  tables) neither is judged.
- `BILATERAL_SPLIT_LINES`: a bilateral-indicator-1 code on one line with RT and on another with LT
  (same date, same rendering practitioner), instead of one line with 50. Lines carrying 50, or
  both RT and LT, are not sides of a split (their own rules report them). Each RT/LT pair is
  reported once, on the line that completes it (the later line). A line carrying 59 or an X
  modifier says the service is on a distinct structure or in a distinct session, so it is not a
  side of a split. Payers whose `payers.yaml` entry
  says `bilateral_format: rt_lt` want exactly this two-line format, so the rule is off for them.
- `MODIFIER_57_MINOR_PROCEDURE`: 57 on an E/M line the day of a minor procedure only (Medicare
  global surgery rules); the E/M lines with 57 go to `surgery_decision`.
- A line is first checked with set operations on its modifier list (well formed? any of
  50/51/59/26/TC/RT/LT?); only a line carrying one of those is looked at modifier by modifier.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from types import MappingProxyType
from typing import Literal

from service.engine.families.surgery_decision import RULE_ID as DECISION_RULE
from service.engine.families.surgery_decision import judge_decisions
from service.engine.findings import finding
from service.models.events import Claim, Finding, ServiceLine
from service.ruletable.compiled import RuleTable

__all__ = ["MAX_MODIFIERS", "RULE_IDS", "check"]

RULE_IDS: frozenset[str] = frozenset(
    {
        "MODIFIER_INVALID",
        "MODIFIER_TOO_MANY",
        "MODIFIER_DUPLICATE",
        "MODIFIER_51_ON_ADDON",
        "MODIFIER_50_NOT_ALLOWED",
        "MODIFIER_50_WITH_ANATOMIC",
        "MODIFIER_59_WITH_X",
        "MODIFIER_PCTC_NOT_ALLOWED",
        "BILATERAL_SPLIT_LINES",
        "MODIFIER_EM_ONLY",
        "MODIFIER_59_ON_EM",
        "MODIFIER_RT_LT_SAME_LINE",
        "MODIFIER_50_UNITS",
        DECISION_RULE,
    }
)

MAX_MODIFIERS = 4
"""X12 837P SV1-01: procedure modifiers C003-03 to C003-06 (F-X12-MOD)."""

_SHAPE = re.compile(r"[0-9]{2}|[A-Z][0-9A-Z]|[1238]P")
_DIGITS = "0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VALID: frozenset[str] = frozenset(
    a + b for a in _DIGITS + _UPPER for b in _DIGITS + _UPPER if _SHAPE.fullmatch(a + b)
)
"""Every well-shaped modifier (about a thousand): a set hit instead of a regex per modifier."""

_X_SUBSETS = ("XE", "XP", "XS", "XU")
_DISTINCT = frozenset({"59", *_X_SUBSETS})
_EM_ONLY = frozenset({"25", "57"})
_PAIRWISE = frozenset({"50", "51", "26", "TC", "RT", "LT", *_DISTINCT})
_RARE = frozenset({"26", "TC", *_DISTINCT, *_EM_ONLY})
"""Modifiers some pair or indicator rule looks at; a line with none of them needs only the
E/M-only check of 25/57."""
_SHOWN = 6

Side = Literal["RT", "LT"]


def check(claim: Claim, table: RuleTable) -> list[Finding]:
    out: list[Finding] = []
    sided: list[tuple[ServiceLine, Side]] | None = None
    decisions: list[ServiceLine] = []  # E/M lines with 57
    sides = 0  # bit 1: an RT-only line of a bilateral-indicator-1 code, bit 2: an LT-only one
    visits = table.visits
    em_codes = visits.em_modifier_codes if visits is not None else None
    no_distinct = visits.no_distinct_modifier if visits is not None else None
    for line in claim.service_lines:
        mods = line.modifiers
        if not mods:
            continue
        count = len(mods)
        if count > MAX_MODIFIERS or not _VALID.issuperset(mods) or (
            count > 1 and (mods[0] == mods[1] if count == 2 else len(set(mods)) != count)
        ):
            if count > MAX_MODIFIERS:
                out.append(_too_many(table, line))
            if not _VALID.issuperset(mods):
                out.append(_invalid(table, line))
            if len(set(mods)) != count:
                out.append(_duplicate(table, line))
        if _PAIRWISE.isdisjoint(mods):  # e.g. KX, or 25 alone on a visit
            if em_codes is not None and not _EM_ONLY.isdisjoint(mods):
                if line.procedure_code not in em_codes:
                    out.append(_em_only(table, line))
                elif "57" in mods:
                    decisions.append(line)
            continue
        code = line.procedure_code
        # 25/57, 59/X and 26/TC are rare beside 50, 51, RT and LT: one test skips all of them.
        rare = not _RARE.isdisjoint(mods)
        distinct = rare and not _DISTINCT.isdisjoint(mods)
        if rare:
            if em_codes is not None and ("25" in mods or "57" in mods):
                if code not in em_codes:
                    out.append(_em_only(table, line))
                elif "57" in mods:
                    decisions.append(line)
            if distinct:
                if "59" in mods:
                    x_with_59 = tuple(m for m in _X_SUBSETS if m in mods)
                    if x_with_59:
                        out.append(_fifty_nine(table, line, x_with_59))
                if no_distinct is not None and code in no_distinct:
                    out.append(_distinct_on_em(table, line))
        if "51" in mods:
            addon = table.addons.get(code)
            if addon is not None and addon.is_addon_on(line.service_date):
                out.append(_fifty_one(table, line))
        has_rt, has_lt = "RT" in mods, "LT" in mods
        if "50" in mods:
            bilateral = table.no_modifier_50.get(code)
            if bilateral is not None and not (
                bilateral == "2" and code in _follows_cpt(claim, table)
            ):
                out.append(_fifty_not_allowed(table, line, bilateral))
            if has_rt or has_lt:
                out.append(_fifty_anatomic(table, line))
            if line.units > 1:
                out.append(_fifty_units(table, line))
        elif has_rt:
            if has_lt:
                out.append(_rt_and_lt(table, line))
            elif not distinct and code in table.bilateral_one:
                # Without 50, a line with RT or LT alone is a side; 59/X says a distinct site.
                if sided is None:
                    sided = []
                sided.append((line, "RT"))
                sides |= 1
        elif has_lt and not distinct and code in table.bilateral_one:
            if sided is None:
                sided = []
            sided.append((line, "LT"))
            sides |= 2
        if rare and ("26" in mods or "TC" in mods):
            pctc = table.pctc_refused.get(code)
            if pctc is not None:
                refused = [m for m in ("26", "TC") if m in mods and m in pctc[1]]
                if refused:
                    out.append(_pctc(table, line, pctc[0], refused))
    # A split needs an RT line and an LT line: with one side only there is nothing to pair.
    if sided is not None and sides == 3 and not _split_payer(claim, table):
        out.extend(_splits(table, claim, sided))
    if decisions:
        out.extend(judge_decisions(claim, table, decisions))
    return out


def _follows_cpt(claim: Claim, table: RuleTable) -> frozenset[str]:
    """Codes of bilateral indicator 2 for which the claim's payer follows CPT and accepts 50."""
    policies = table.policies
    return policies.payer(claim.payer_id).modifier_50_cpt if policies is not None else frozenset()


def _split_payer(claim: Claim, table: RuleTable) -> bool:
    """Does the claim's payer want a bilateral service as RT + LT lines (not one line with 50)?"""
    policies = table.policies
    return policies is not None and policies.payer(claim.payer_id).split_lines


def _splits(table: RuleTable, claim: Claim, sided: list[tuple[ServiceLine, Side]]) -> list[Finding]:
    """Pair RT lines with LT lines of the same code, date and practitioner, in line order."""
    default_npi = claim.rendering_provider.npi
    waiting: dict[tuple[str, date, str, Side], list[ServiceLine]] = {}
    out: list[Finding] = []
    for line, side in sided:
        npi = line.rendering_provider_npi or default_npi
        code, on = line.procedure_code, line.service_date
        partners = waiting.get((code, on, npi, "LT" if side == "RT" else "RT"))
        if partners:
            out.append(_split(table, line, partners.pop(0)))
        else:
            waiting.setdefault((code, on, npi, side), []).append(line)
    return out


def _which(values: list[str]) -> str:
    """`modifier '5O' is` / `modifiers '5O', 'kx' are`, each value cut to a few characters."""
    shown = ", ".join(repr(v if len(v) <= _SHOWN else v[:_SHOWN] + "...") for v in values)
    return f"modifiers {shown} are" if len(values) > 1 else f"modifier {shown} is"


def _too_many(table: RuleTable, line: ServiceLine) -> Finding:
    return finding(
        table,
        "MODIFIER_TOO_MANY",
        f"Line {line.line_number}: {len(line.modifiers)} modifiers, but a claim line carries at "
        f"most {MAX_MODIFIERS}; keep the {MAX_MODIFIERS} that affect payment first (use 99 for "
        "multiple modifiers if the payer asks for it) and document the rest.",
        line,
    )


def _invalid(table: RuleTable, line: ServiceLine) -> Finding:
    bad = [m for m in line.modifiers if m not in _VALID]
    hints = [h for h in (_suggest(m) for m in bad) if h]
    hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
    return finding(
        table,
        "MODIFIER_INVALID",
        f"Line {line.line_number}: {_which(bad)} not valid{hint}; a modifier is two upper-case "
        "characters, such as 50, RT or KX.",
        line,
    )


def _suggest(bad: str) -> str:
    """The valid modifier a typing slip most likely stands for, or empty."""
    fixed = bad.strip().upper()
    if fixed not in _VALID and len(fixed) == 2 and fixed[0].isdigit():
        fixed = fixed.replace("O", "0").replace("I", "1")
    return fixed if fixed in _VALID else ""


def _duplicate(table: RuleTable, line: ServiceLine) -> Finding:
    seen: set[str] = set()
    repeated: list[str] = []
    for m in line.modifiers:
        if m in seen and m not in repeated:
            repeated.append(m)
        seen.add(m)
    return finding(
        table,
        "MODIFIER_DUPLICATE",
        f"Line {line.line_number}: {_which(repeated)} repeated on the line; list each modifier "
        "once.",
        line,
    )


def _fifty_one(table: RuleTable, line: ServiceLine) -> Finding:
    return finding(
        table,
        "MODIFIER_51_ON_ADDON",
        f"Line {line.line_number}: {line.procedure_code} is an add-on code, which is exempt from "
        "modifier 51; remove 51 from this line.",
        line,
    )


def _fifty_not_allowed(table: RuleTable, line: ServiceLine, bilateral: str) -> Finding:
    why = {
        "0": "bilateral payment does not apply to it",
        "2": "its payment already assumes both sides",
        "9": "the bilateral concept does not apply to it",
    }[bilateral]
    return finding(
        table,
        "MODIFIER_50_NOT_ALLOWED",
        f"Line {line.line_number}: {line.procedure_code} cannot take modifier 50 (fee-schedule "
        f"bilateral indicator {bilateral}: {why}); remove 50 and bill the service as performed.",
        line,
    )


def _fifty_anatomic(table: RuleTable, line: ServiceLine) -> Finding:
    return finding(
        table,
        "MODIFIER_50_WITH_ANATOMIC",
        f"Line {line.line_number}: modifier 50 is billed together with RT or LT; a bilateral "
        "service takes 50 alone, so remove RT/LT (or remove 50 if only one side was done).",
        line,
    )


def _fifty_nine(table: RuleTable, line: ServiceLine, x: tuple[str, ...]) -> Finding:
    return finding(
        table,
        "MODIFIER_59_WITH_X",
        f"Line {line.line_number}: modifier 59 is billed together with {', '.join(x)}; the X "
        "modifiers are more specific forms of 59, so keep the one that applies and remove 59.",
        line,
    )


_PCTC_WHY = MappingProxyType({
    "0": "the professional/technical split does not apply to it",
    "2": "it is a professional-component-only code",
    "3": "it is a technical-component-only code",
    "4": "it is a whole-test code with separate professional and technical codes",
    "5": "it is an incident-to service",
    "6": "it is a laboratory physician interpretation code",
    "8": "it is a physician interpretation code",
    "9": "the PC/TC concept does not apply to it",
})


def _pctc(table: RuleTable, line: ServiceLine, indicator: str, refused: Sequence[str]) -> Finding:
    return finding(
        table,
        "MODIFIER_PCTC_NOT_ALLOWED",
        f"Line {line.line_number}: {line.procedure_code} has PC/TC indicator {indicator} "
        f"({_PCTC_WHY[indicator]}), so modifier {' and '.join(refused)} cannot be used; remove "
        "it (bill the professional- or technical-component code if there is one).",
        line,
    )


def _fifty_units(table: RuleTable, line: ServiceLine) -> Finding:
    return finding(
        table,
        "MODIFIER_50_UNITS",
        f"Line {line.line_number}: {line.procedure_code} with modifier 50 is billed with "
        f"{line.units} units; a bilateral service is reported once, with 50 and 1 unit.",
        line,
    )


def _rt_and_lt(table: RuleTable, line: ServiceLine) -> Finding:
    return finding(
        table,
        "MODIFIER_RT_LT_SAME_LINE",
        f"Line {line.line_number}: RT and LT are both on the line; bill a bilateral service with "
        "modifier 50 alone (bilateral indicator 1), or one side per line with the modifier that "
        "says why both are separate.",
        line,
    )


def _em_only(table: RuleTable, line: ServiceLine) -> Finding:
    which = [m for m in ("25", "57") if m in line.modifiers]
    return finding(
        table,
        "MODIFIER_EM_ONLY",
        f"Line {line.line_number}: modifier {' and '.join(which)} is for evaluation and "
        f"management codes, and {line.procedure_code} is not one; put it on the E/M line and "
        "remove it here.",
        line,
    )


def _distinct_on_em(table: RuleTable, line: ServiceLine) -> Finding:
    which = [m for m in ("59", *_X_SUBSETS) if m in line.modifiers]
    return finding(
        table,
        "MODIFIER_59_ON_EM",
        f"Line {line.line_number}: modifier {', '.join(which)} is on evaluation and management "
        f"code {line.procedure_code}; 59 and XE/XP/XS/XU are not used on E/M codes (use 25 for "
        "a separately identifiable visit).",
        line,
    )


def _split(table: RuleTable, line: ServiceLine, first: ServiceLine) -> Finding:
    return finding(
        table,
        "BILATERAL_SPLIT_LINES",
        f"Line {line.line_number}: {line.procedure_code} is billed for the right and left side "
        f"on lines {first.line_number} and {line.line_number}; bill a bilateral "
        f"{line.procedure_code} on one line with modifier 50 and 1 unit, and remove the other "
        "line.",
        line,
    )
