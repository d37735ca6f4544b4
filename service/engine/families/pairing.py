"""Add-on code pairing: the CMS NCCI add-on code (AOC) edits (billing-rules 1.1, F-AOC-1..6).

An add-on code is paid only with a primary procedure billed for the same patient, on the same date
of service, by the same practitioner (F-AOC-3). One claim is one patient, so the family groups
lines by (date of service, rendering practitioner), where a line's `rendering_provider_npi`
overrides the claim's rendering provider.

Decision points:
- Effective dating. Every test uses the line's date of service: an add-on is an add-on on that
  date only if one of its edit rows is in effect (`AddonCode.is_addon_on`), and a primary counts
  only while its pairing row and the primary code are in effect (`AddonCode.primaries_on`).
  64494 is paired with 64490 from 2023-01-01, so before that date 64490 does not support it.
- Deleted add-on codes. After `AOC_DelDT` the code is no longer an add-on edit: it gets no
  pairing finding and is treated like any other procedure line (it can even serve as another
  add-on's primary). Whether a deleted code is billable at all is a code-validity question this
  table does not answer.
- Chains (64491 + 64492 without 64490). A line supports an add-on only if it is not an add-on on
  that date, or is itself a supported add-on: the least fixpoint, so add-ons that only support
  each other are all flagged, and a line never supports itself.
- Edit type by date: the type (1, 2 or 3) is that of the AOC rows in effect on the line's date
  (`AddonCode.type_on`), not the newest row's: 20701 is Type 1 until 2022, Type 3 from 2023.
- Type 2 and 3 add-ons (contractor-defined primaries, F-AOC-4/5). With no listed primary but
  another plausible primary by the same practitioner on that date (a procedure that is not an
  add-on, a visit, a lab test, a drug or a supply: `addon_primaries.yaml`), the pairing may be
  valid under the payer's own list: `ADDON_PRIMARY_UNLISTED` (warning). With none:
  `ADDON_WITHOUT_PRIMARY` (error), and the message names the line that is no primary.
- Lines with an invalid procedure code are not procedures: they neither support an add-on nor count
  as a plausible primary (PROCEDURE_CODE_INVALID reports them).
- Same-group exception (F-AOC-6; Medicare Claims Processing Manual ch. 12 section 30.6.12):
  99292 counts its listed primary 99291 billed on that date by another practitioner of the
  claim's billing group. The line's specialty is not on the claim, so that pairing is accepted
  with `ADDON_PRIMARY_OTHER_PRACTITIONER` (warning) asking to confirm the same specialty.
- Payer exceptions (`addon_primaries.yaml` payer_primaries): a payer that follows CPT's broader
  primary list (99417 with 99245 before CMS listed it) supports the add-on on the entry's dates,
  with `ADDON_PRIMARY_PAYER_EXCEPTION` (warning) citing the entry.
- Payers whose `payers.yaml` entry turns the national AOC edits off (`national_edits.aoc: false`)
  get no pairing finding; a table without payer policies applies the edits to every payer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from service.engine.findings import finding
from service.models.events import Claim, Finding, ServiceLine
from service.ruletable.compiled import AddonCode, PayerPrimary, RuleTable, is_procedure_code

__all__ = ["RULE_IDS", "check"]

RULE_IDS: frozenset[str] = frozenset(
    {
        "ADDON_WITHOUT_PRIMARY",
        "ADDON_PRIMARY_UNLISTED",
        "ADDON_PRIMARY_OTHER_PRACTITIONER",
        "ADDON_PRIMARY_PAYER_EXCEPTION",
    }
)

_LISTED_SHOWN = 6
"""At most this many listed primaries are named in a message."""


def _fix(a: AddonCode, on: date, edit_type: int) -> str:
    """What to bill so that this add-on has its primary on `on`, as message text."""
    listed = _name_primaries(a.listed_on(on))
    if listed and edit_type == 1:
        return f"bill a listed primary ({listed})"
    if listed:
        return f"bill a listed primary ({listed}) or a primary the payer accepts for it"
    return "bill the primary procedure it adds to (the payer defines which are accepted)"


def _name_primaries(codes: Sequence[str]) -> str:
    shown = ", ".join(codes[:_LISTED_SHOWN])
    more = len(codes) - _LISTED_SHOWN
    return shown + (f" or one of {more} more" if more > 0 else "")


def check(claim: Claim, table: RuleTable) -> list[Finding]:
    addons = table.addons
    lines = claim.service_lines
    if _all_directly_supported(claim, lines, addons):  # also true of a claim without add-ons
        return []
    policies = table.policies  # asked only now: a supported claim has no finding for any payer
    if policies is not None and not policies.payer(claim.payer_id).aoc_edits:
        return []
    return _judge(claim, lines, addons, table)


def _all_directly_supported(
    claim: Claim, lines: tuple[ServiceLine, ...], addons: Mapping[str, AddonCode]
) -> bool:
    """Fast path: every add-on line has a listed primary that is not an add-on itself.

    Such a claim has no pairing finding whatever the rest of the fixpoint would say, and it is by
    far the common case (64490 + 64491), so it is decided without building per-line tables.
    """
    default_npi = ""  # the claim's rendering NPI, read at the first add-on line
    for line in lines:
        a = addons.get(line.procedure_code)
        if a is None:
            continue
        on = line.service_date
        listed = a.edit_on(on)
        if listed is None:
            continue
        if not default_npi:
            default_npi = claim.rendering_provider.npi
        npi = line.rendering_provider_npi or default_npi
        for other in lines:
            if other is line or other.service_date != on:
                continue
            code = other.procedure_code
            if code not in listed or (other.rendering_provider_npi or default_npi) != npi:
                continue
            primary_addon = addons.get(code)
            if primary_addon is None or primary_addon.edit_on(on) is None:
                break
        else:
            return False
    return True


_Pending = tuple[int, list[int], list[int]]
"""(add-on line index, its listed primaries' line indexes, other procedures' line indexes)."""


@dataclass(slots=True)
class _Lines:
    """The claim's lines with each one's code, date and practitioner (the line's own NPI or the
    claim's rendering NPI), gathered once for the fixpoint and the messages."""

    lines: tuple[ServiceLine, ...]
    codes: list[str]
    dates: list[date]
    npis: list[str]


def _judge(
    claim: Claim, lines: tuple[ServiceLine, ...], addons: Mapping[str, AddonCode], table: RuleTable
) -> list[Finding]:
    default_npi = claim.rendering_provider.npi
    at = _Lines(lines, [], [], [])
    codes, dates, npis = at.codes, at.dates, at.npis
    # ok[j]: line j may serve as a primary. Non-add-on lines may; add-ons once supported.
    ok: list[bool] = []
    # Add-on lines: line index, add-on, listed primaries and edit type on the line's date.
    active: list[tuple[int, AddonCode, frozenset[str], int]] = []
    for i, line in enumerate(lines):
        code, on = line.procedure_code, line.service_date
        codes.append(code)
        dates.append(on)
        npis.append(line.rendering_provider_npi or default_npi)
        a = addons.get(code)
        primaries = a.edit_on(on) if a is not None else None
        ok.append(primaries is None)
        if a is not None and primaries is not None:
            active.append((i, a, primaries, a.type_on(on)))
    # Per add-on line: same date and practitioner lines that are listed primaries on that date,
    # and (Type 2/3 on that date) the other plausible primaries: procedures that are no add-on,
    # visit, lab test, drug or supply. An add-on with a same-group exception (99292) also takes
    # its listed primary by another practitioner of the claim's group.
    todo: list[_Pending] = []
    candidates: dict[int, list[int]] = {}
    crossed: dict[int, list[int]] = {}
    excepted: dict[int, tuple[list[int], str]] = {}
    exceptions, by_payer = table.other_practitioner, table.payer_primaries
    for i, a, primaries, edit_type in active:
        on, npi = dates[i], npis[i]
        contractor = edit_type != 1
        cross_codes = exceptions.get(a.code)
        payer_codes, why = _payer_primaries(by_payer, claim.payer_id, a.code, on)
        listed: list[int] = []
        others: list[int] = []
        cross: list[int] = []
        extra: list[int] = []
        for j, code in enumerate(codes):
            if j == i or dates[j] != on:
                continue
            if npis[j] != npi:
                if cross_codes is not None and code in cross_codes and code in primaries:
                    cross.append(j)
            elif code in primaries:
                listed.append(j)
            elif code in payer_codes:
                extra.append(j)
            elif contractor and _plausible(code, on, addons, table):
                others.append(j)
        if listed or others or cross or extra:
            todo.append((i, listed + cross + extra, others))
        candidates[i] = listed
        if cross:
            crossed[i] = cross
        if extra:
            excepted[i] = (extra, why)
    unlisted = _fixpoint(todo, ok)  # an add-on line with no candidate at all stays unsupported

    out: list[Finding] = []
    for i, a, _, edit_type in active:
        if not ok[i]:
            message = _no_primary(i, a, edit_type, at, ok, table)
            out.append(finding(table, "ADDON_WITHOUT_PRIMARY", message, lines[i]))
        elif _any_ok(candidates[i], ok):
            continue  # a CMS-listed primary by the same practitioner: nothing to say
        elif i in crossed and _any_ok(crossed[i], ok):
            message = _other_practitioner(i, a, at, crossed[i])
            out.append(finding(table, "ADDON_PRIMARY_OTHER_PRACTITIONER", message, lines[i]))
        elif i in excepted and _any_ok(excepted[i][0], ok):
            extra, why = excepted[i]
            message = _payer_exception(i, a, at, extra, claim.payer_id, why)
            out.append(finding(table, "ADDON_PRIMARY_PAYER_EXCEPTION", message, lines[i]))
        elif i in unlisted:
            message = _unlisted(i, a, edit_type, at, unlisted[i])
            out.append(finding(table, "ADDON_PRIMARY_UNLISTED", message, lines[i]))
    return out


def _payer_primaries(
    by_payer: Mapping[tuple[str, str], tuple[PayerPrimary, ...]], payer: str, code: str, on: date
) -> tuple[frozenset[str], str]:
    """The primaries `payer` accepts for `code` on `on` beyond the CMS list, and their source."""
    for extra in by_payer.get((payer, code), ()):
        if extra.start <= on <= extra.end:
            return extra.primaries, extra.reference
    return _NONE, ""


_NONE: frozenset[str] = frozenset()


def _payer_exception(
    i: int, a: AddonCode, at: _Lines, extra: list[int], payer: str, why: str
) -> str:
    j = extra[0]
    return (
        f"Line {at.lines[i].line_number}: {a.code} is paired with {at.codes[j]} on line "
        f"{at.lines[j].line_number}, a primary the CMS add-on file does not list on "
        f"{at.dates[i].isoformat()} but the payer data for {payer} accepts ({why}); confirm "
        "the payer's policy, or bill a CMS-listed primary."
    )


def _plausible(code: str, on: date, addons: Mapping[str, AddonCode], table: RuleTable) -> bool:
    """A contractor-defined primary must be a procedure: not an add-on on `on`, a visit, a lab
    test, a drug or a supply (the AOC file's listed primaries are taken as listed)."""
    if not is_procedure_code(code):
        return False
    other = addons.get(code)
    if other is not None and other.edit_on(on) is not None:
        return False
    return table.not_primary_kind(code) is None


def _fixpoint(todo: list[_Pending], ok: list[bool]) -> dict[int, int]:
    """Mark supported add-on lines in `ok`; return add-on line -> the other procedure accepted.

    The least fixpoint: listed primaries until nothing moves (the result does not depend on the
    order lines are visited in); then contractor-defined primaries, one pass in line order, each
    acceptance counting for the lines after it; and again, until that pass accepts nothing.
    """
    unlisted: dict[int, int] = {}
    while True:
        moved = True
        while moved:
            moved = False
            for i, listed, _ in todo:
                if not ok[i] and _any_ok(listed, ok):
                    ok[i] = moved = True
        accepted = False
        for i, _, others in todo:
            if ok[i]:
                continue
            for j in others:
                if ok[j]:
                    ok[i] = accepted = True
                    unlisted[i] = j
                    break
        if not accepted:
            return unlisted


def _any_ok(lines: list[int], ok: list[bool]) -> bool:
    for j in lines:  # noqa: SIM110 - a loop allocates no generator
        if ok[j]:
            return True
    return False


def _no_primary(
    i: int, a: AddonCode, edit_type: int, at: _Lines, ok: list[bool], table: RuleTable
) -> str:
    on = at.dates[i]
    why = _why(i, a, at, ok) or (_not_plausible(i, at, table) if edit_type != 1 else "")
    return (
        f"Line {at.lines[i].line_number}: add-on {a.code} has no primary on this claim for "
        f"{on.isoformat()} by practitioner {at.npis[i]}{why}; {_fix(a, on, edit_type)} on "
        "the same date by the same practitioner, or remove the add-on."
    )


def _not_plausible(i: int, at: _Lines, table: RuleTable) -> str:
    """Why the other lines of that date and practitioner are no primary of a Type 2/3 add-on."""
    on, npi = at.dates[i], at.npis[i]
    for j, code in enumerate(at.codes):
        if j == i or at.dates[j] != on or at.npis[j] != npi:
            continue
        kind = table.not_primary_kind(code)
        if kind is not None:
            return (
                f" ({code} on line {at.lines[j].line_number} is a {kind}, not a procedure the "
                "add-on can add to)"
            )
    return ""


def _other_practitioner(i: int, a: AddonCode, at: _Lines, cross: list[int]) -> str:
    j = cross[0]
    return (
        f"Line {at.lines[i].line_number}: {a.code} by practitioner {at.npis[i]} is paired with "
        f"{at.codes[j]} on line {at.lines[j].line_number} by practitioner {at.npis[j]} of the "
        "same billing group; CMS allows this only when both are of the same specialty, which "
        "the claim does not show: confirm it, or bill the add-on under the practitioner who "
        "reported the primary."
    )


def _why(i: int, a: AddonCode, at: _Lines, ok: list[bool]) -> str:
    """Why the nearest candidate primary on the claim does not count, when there is one."""
    on, npi = at.dates[i], at.npis[i]
    primaries = a.windows
    for j, code in enumerate(at.codes):
        if j == i or code not in primaries:
            continue
        where = f"{code} on line {at.lines[j].line_number}"
        other_on, other_npi = at.dates[j], at.npis[j]
        if other_on != on:
            return f" ({where} is dated {other_on.isoformat()})"
        if other_npi != npi:
            return f" ({where} is by practitioner {other_npi})"
        if not a.lists(code, on):
            return f" ({where} {_window_text(a, code, on)})"
        if not ok[j]:
            return f" ({where} is itself an add-on without its primary)"
    return ""


def _window_text(a: AddonCode, primary: str, on: date) -> str:
    """Why a listed primary does not count on `on`: not yet, or no longer, in effect."""
    windows = a.windows[primary]
    later = [start for start, _ in windows if start > on]
    if later:
        return f"counts as a primary of {a.code} only from {min(later)}"
    ended = max(end for _, end in windows)
    return f"stopped counting as a primary of {a.code} after {ended}"


def _unlisted(i: int, a: AddonCode, edit_type: int, at: _Lines, j: int) -> str:
    listed = _name_primaries(a.listed_on(at.dates[i]))
    which = f"listed: {listed}" if listed else "CMS lists none"
    other = at.codes[j]
    return (
        f"Line {at.lines[i].line_number}: add-on {a.code} (AOC Type {edit_type}) "
        "is billed with "
        f"{other} on line {at.lines[j].line_number}, which is not a CMS-listed primary "
        f"({which}); confirm the payer accepts {other} as its primary, or bill "
        "a listed primary on the same date by the same practitioner."
    )
