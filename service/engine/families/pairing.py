"""Add-on code pairing: the CMS NCCI add-on code (AOC) edits (billing-rules 1.1, F-AOC-1..6).

An add-on code is paid only with a primary procedure billed for the same patient, on the same date
of service, by the same practitioner (F-AOC-3). One claim is one patient, so the family groups
lines by (date of service, rendering practitioner), where a line's `rendering_provider_npi`
overrides the claim's rendering provider.

Decision points:
- Effective dating. Every test uses the line's date of service: an add-on is an add-on on that
  date only if one of its edit rows is in effect (`AddonCode.is_addon_on`), and a primary counts
  only while its pairing row and the primary code are in effect (`AddonPairing.in_effect`).
  64494 is paired with 64490 from 2023-01-01, so before that date 64490 does not support it.
- Deleted add-on codes. After `AOC_DelDT` the code is no longer an add-on edit: it gets no
  pairing finding and is treated like any other procedure line (it can even serve as another
  add-on's primary). Whether a deleted code is billable at all is a code-validity question this
  table does not answer.
- Chains (64491 + 64492 without 64490). A line supports an add-on only if it is not an add-on on
  that date, or is itself a supported add-on: the least fixpoint, so add-ons that only support
  each other are all flagged, and a line never supports itself.
- Type 2 and 3 add-ons (contractor-defined primaries, F-AOC-4/5). With no listed primary but
  another supported procedure by the same practitioner on that date, the pairing may be valid
  under the payer's own list: `ADDON_PRIMARY_UNLISTED` (warning). With no other procedure at all:
  `ADDON_WITHOUT_PRIMARY` (error). A warned add-on counts as supported for later add-ons.
- Lines with an invalid procedure code are not procedures: they neither support an add-on nor count
  as "another procedure" (PROCEDURE_CODE_INVALID reports them).
- Different-date exceptions (99291/99292, F-AOC-6) are not modelled: the file does not list them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from service.engine.families.procedure_codes import is_procedure_code
from service.engine.findings import finding
from service.models.events import Claim, Finding, ServiceLine
from service.ruletable.compiled import AddonCode, RuleTable

__all__ = ["RULE_IDS", "Addon", "addon_index", "check"]

RULE_IDS: frozenset[str] = frozenset({"ADDON_WITHOUT_PRIMARY", "ADDON_PRIMARY_UNLISTED"})

_DAY = timedelta(days=1)
_LISTED_SHOWN = 6
"""At most this many listed primaries are named in a message."""


@dataclass(frozen=True, slots=True)
class Addon:
    """One add-on code compiled for the hot path: date windows as tuples, primaries as a dict."""

    code: str
    edit_type: int
    last_day: date
    """Last day the add-on code is valid (date.max while active)."""
    contractor: bool
    spans: tuple[tuple[date, date], ...]
    """Windows in which some edit row is in effect (pairing effective .. pairing deleted)."""
    primaries: dict[str, tuple[tuple[date, date], ...]]
    """Primary -> windows in which that primary counts (pairing and primary code both in effect)."""
    eras: tuple[date, ...]
    """Dates on which the set of listed primaries changes, ascending."""
    era_texts: tuple[str, ...]
    """Message text naming the primaries in effect from each era's date (prepared once)."""

    @classmethod
    def compile(cls, addon: AddonCode) -> Addon:
        primaries: dict[str, list[tuple[date, date]]] = {}
        spans: list[tuple[date, date]] = []
        for p in addon.pairings:
            pair_end = p.deleted or date.max
            spans.append((p.effective, pair_end))
            end = min(pair_end, p.primary_deleted or date.max)
            primaries.setdefault(p.primary, []).append((p.effective, end))
        ordered = sorted(primaries)
        eras = sorted(
            {start for ws in primaries.values() for start, _ in ws}
            | {end + _DAY for ws in primaries.values() for _, end in ws if end < date.max}
        )
        return cls(
            code=addon.code,
            edit_type=addon.edit_type,
            last_day=addon.deleted or date.max,
            contractor=addon.contractor_defined,
            spans=tuple(spans),
            primaries={k: tuple(v) for k, v in primaries.items()},
            eras=tuple(eras),
            era_texts=tuple(
                _name_primaries([p for p in ordered if any(s <= on <= e for s, e in primaries[p])])
                for on in eras
            ),
        )

    def is_addon_on(self, on: date) -> bool:
        """Same meaning as `AddonCode.is_addon_on`, without allocating."""
        if on > self.last_day:
            return False
        if self.contractor:
            return True
        for start, end in self.spans:  # noqa: SIM110 - a loop allocates no generator
            if start <= on <= end:
                return True
        return False

    def lists(self, primary: str, on: date) -> bool:
        """Is `primary` a listed primary of this add-on on `on`?"""
        windows = self.primaries.get(primary)
        if windows is None:
            return False
        for start, end in windows:  # noqa: SIM110 - a loop allocates no generator
            if start <= on <= end:
                return True
        return False

    def listed_text(self, on: date) -> str:
        """The listed primaries in effect on `on`, as message text ('' when there are none)."""
        era = bisect_right(self.eras, on) - 1
        return self.era_texts[era] if era >= 0 else ""


def _name_primaries(codes: Sequence[str]) -> str:
    shown = ", ".join(codes[:_LISTED_SHOWN])
    more = len(codes) - _LISTED_SHOWN
    return shown + (f" or one of {more} more" if more > 0 else "")


_index: tuple[RuleTable, dict[str, Addon]] | None = None
"""(table, its compiled add-ons), for the table seen last."""


def addon_index(table: RuleTable) -> dict[str, Addon]:
    """Add-on code -> compiled `Addon` for `table` (shared with the modifiers family).

    Compiled once per rule table and swapped in as one tuple, so a reader never pairs one table
    with another table's add-ons (the service holds one table per process).
    """
    global _index
    cached = _index
    if cached is not None and cached[0] is table:
        return cached[1]
    addons = {code: Addon.compile(a) for code, a in table.addons.items()}
    _index = (table, addons)
    return addons


def check(claim: Claim, table: RuleTable) -> list[Finding]:
    addons = addon_index(table)
    lines = claim.service_lines
    for line in lines:
        if line.procedure_code in addons:
            break
    else:
        return []
    if _all_directly_supported(claim, lines, addons):
        return []
    return _judge(claim, lines, addons, table)


def _all_directly_supported(
    claim: Claim, lines: tuple[ServiceLine, ...], addons: dict[str, Addon]
) -> bool:
    """Fast path: every add-on line has a listed primary that is not an add-on itself.

    Such a claim has no pairing finding whatever the rest of the fixpoint would say, and it is by
    far the common case (64490 + 64491), so it is decided without building per-line tables.
    """
    default_npi = claim.rendering_provider.npi
    for line in lines:
        a = addons.get(line.procedure_code)
        if a is None:
            continue
        on = line.service_date
        if not a.is_addon_on(on):
            continue
        npi = line.rendering_provider_npi or default_npi
        for other in lines:
            if other is line or other.service_date != on:
                continue
            code = other.procedure_code
            if not a.lists(code, on) or (other.rendering_provider_npi or default_npi) != npi:
                continue
            primary_addon = addons.get(code)
            if primary_addon is None or not primary_addon.is_addon_on(on):
                break
        else:
            return False
    return True


def _judge(
    claim: Claim, lines: tuple[ServiceLine, ...], addons: dict[str, Addon], table: RuleTable
) -> list[Finding]:
    default_npi = claim.rendering_provider.npi
    npis = [line.rendering_provider_npi or default_npi for line in lines]
    active: list[Addon | None] = []
    for line in lines:
        a = addons.get(line.procedure_code)
        active.append(a if a is not None and a.is_addon_on(line.service_date) else None)
    # ok[j]: line j may serve as a primary. Non-add-on lines may; add-ons once supported.
    ok = [a is None for a in active]
    # Per add-on line: same date and practitioner lines that are listed primaries on that date,
    # and (Type 2/3 only) the other procedures that could be contractor-defined primaries.
    todo: list[tuple[int, list[int], list[int]]] = []
    for i, a in enumerate(active):
        if a is None:
            continue
        on, npi = lines[i].service_date, npis[i]
        listed: list[int] = []
        others: list[int] = []
        for j, other in enumerate(lines):
            if j == i or other.service_date != on or npis[j] != npi:
                continue
            code = other.procedure_code
            if a.lists(code, on):
                listed.append(j)
            elif a.edit_type != 1 and is_procedure_code(code):
                others.append(j)
        todo.append((i, listed, others))
    candidates = {i: listed for i, listed, _ in todo}

    # Least fixpoint: listed primaries first; contractor-defined ones only when nothing moves.
    unlisted: dict[int, int] = {}  # add-on line -> the other procedure it was accepted with
    while todo:
        waiting = [t for t in todo if not _any_ok(t[1], ok)]
        if len(waiting) < len(todo):
            for t in todo:
                if t not in waiting:
                    ok[t[0]] = True
            todo = waiting
            continue
        for i, _, others in todo:
            for j in others:
                if ok[j]:
                    ok[i] = True
                    unlisted[i] = j
                    break
        todo = [t for t in todo if not ok[t[0]]]
        if len(todo) == len(waiting):
            break

    out: list[Finding] = []
    for i, a in enumerate(active):
        if a is None:
            continue
        if not ok[i]:
            message = _no_primary(i, a, lines, npis, ok)
            out.append(finding(table, "ADDON_WITHOUT_PRIMARY", message, lines[i]))
        elif i in unlisted and not _any_ok(candidates[i], ok):
            message = _unlisted(i, a, lines, unlisted[i])
            out.append(finding(table, "ADDON_PRIMARY_UNLISTED", message, lines[i]))
    return out


def _any_ok(lines: list[int], ok: list[bool]) -> bool:
    for j in lines:  # noqa: SIM110 - a loop allocates no generator
        if ok[j]:
            return True
    return False


def _no_primary(
    i: int, a: Addon, lines: tuple[ServiceLine, ...], npis: list[str], ok: list[bool]
) -> str:
    line = lines[i]
    on, npi = line.service_date, npis[i]
    listed = a.listed_text(on)
    if listed and a.edit_type == 1:
        fix = f"bill a listed primary ({listed})"
    elif listed:
        fix = f"bill a listed primary ({listed}) or a primary the payer accepts for it"
    else:
        fix = "bill the primary procedure it adds to (the payer defines which are accepted)"
    return (
        f"Line {line.line_number}: add-on {a.code} has no primary on this claim for {on} by "
        f"practitioner {npi}{_why(i, a, lines, npis, ok)}; {fix} on the same date by the same "
        "practitioner, or remove the add-on."
    )


def _why(i: int, a: Addon, lines: tuple[ServiceLine, ...], npis: list[str], ok: list[bool]) -> str:
    """Why the nearest candidate primary on the claim does not count, when there is one."""
    on, npi = lines[i].service_date, npis[i]
    for j, other in enumerate(lines):
        code = other.procedure_code
        if j == i or code not in a.primaries:
            continue
        where = f"{code} on line {other.line_number}"
        other_on, other_npi = other.service_date, npis[j]
        if other_on != on:
            return f" ({where} is dated {other_on})"
        if other_npi != npi:
            return f" ({where} is by practitioner {other_npi})"
        if not a.lists(code, on):
            return f" ({where} {_window_text(a, code, on)})"
        if not ok[j]:
            return f" ({where} is itself an add-on without its primary)"
    return ""


def _window_text(a: Addon, primary: str, on: date) -> str:
    """Why a listed primary does not count on `on`: not yet, or no longer, in effect."""
    windows = a.primaries[primary]
    later = [start for start, _ in windows if start > on]
    if later:
        return f"counts as a primary of {a.code} only from {min(later)}"
    ended = max(end for _, end in windows)
    return f"stopped counting as a primary of {a.code} after {ended}"


def _unlisted(i: int, a: Addon, lines: tuple[ServiceLine, ...], j: int) -> str:
    line, other = lines[i], lines[j]
    listed = a.listed_text(line.service_date)
    which = f"listed: {listed}" if listed else "CMS lists none"
    return (
        f"Line {line.line_number}: add-on {a.code} (AOC Type {a.edit_type}) is billed with "
        f"{other.procedure_code} on line {other.line_number}, which is not a CMS-listed primary "
        f"({which}); confirm the payer accepts {other.procedure_code} as its primary, or bill "
        "a listed primary on the same date by the same practitioner."
    )
