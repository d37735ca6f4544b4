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

from dataclasses import dataclass
from datetime import date

from service.engine.families.procedure_codes import is_procedure_code
from service.engine.findings import finding
from service.models.events import Claim, Finding, ServiceLine
from service.ruletable.compiled import AddonCode, RuleTable

__all__ = ["RULE_IDS", "Addon", "addon_index", "check"]

RULE_IDS: frozenset[str] = frozenset({"ADDON_WITHOUT_PRIMARY", "ADDON_PRIMARY_UNLISTED"})

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

    @classmethod
    def compile(cls, addon: AddonCode) -> Addon:
        primaries: dict[str, list[tuple[date, date]]] = {}
        spans: list[tuple[date, date]] = []
        for p in addon.pairings:
            pair_end = p.deleted or date.max
            spans.append((p.effective, pair_end))
            end = min(pair_end, p.primary_deleted or date.max)
            primaries.setdefault(p.primary, []).append((p.effective, end))
        return cls(
            code=addon.code,
            edit_type=addon.edit_type,
            last_day=addon.deleted or date.max,
            contractor=addon.contractor_defined,
            spans=tuple(spans),
            primaries={k: tuple(v) for k, v in primaries.items()},
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

    def listed_on(self, on: date) -> list[str]:
        return sorted(p for p in self.primaries if self.lists(p, on))


class _AddonIndex:
    """Compiled add-ons of the current rule table; rebuilt only when the table changes."""

    __slots__ = ("addons", "table")

    def __init__(self) -> None:
        self.table: RuleTable | None = None
        self.addons: dict[str, Addon] = {}

    def get(self, table: RuleTable) -> dict[str, Addon]:
        if self.table is not table:
            self.addons = {code: Addon.compile(a) for code, a in table.addons.items()}
            self.table = table
        return self.addons


_index = _AddonIndex()


def addon_index(table: RuleTable) -> dict[str, Addon]:
    """Add-on code -> compiled `Addon` for `table` (shared with the modifiers family)."""
    return _index.get(table)


def check(claim: Claim, table: RuleTable) -> list[Finding]:
    addons = _index.get(table)
    lines = claim.service_lines
    for line in lines:
        if line.procedure_code in addons:
            break
    else:
        return []
    return _judge(claim, lines, addons, table)


def _judge(
    claim: Claim, lines: tuple[ServiceLine, ...], addons: dict[str, Addon], table: RuleTable
) -> list[Finding]:
    default_npi = claim.rendering_provider.npi
    n = len(lines)
    codes = [line.procedure_code for line in lines]
    keys = [(line.service_date, line.rendering_provider_npi or default_npi) for line in lines]
    active: list[Addon | None] = []
    for line in lines:
        a = addons.get(line.procedure_code)
        active.append(a if a is not None and a.is_addon_on(line.service_date) else None)
    pending = [i for i in range(n) if active[i] is not None]
    if not pending:
        return []
    # ok[j]: line j may serve as a primary. Non-add-on lines may; add-ons once supported.
    ok = [a is None for a in active]
    unlisted: dict[int, int] = {}  # add-on line -> the other procedure it was accepted with

    while pending:
        progressed = False
        for i in list(pending):
            a = active[i]
            assert a is not None
            if _listed_support(i, a, codes, keys, ok) is not None:
                ok[i] = True
                pending.remove(i)
                progressed = True
        if progressed:
            continue
        for i in list(pending):
            a = active[i]
            assert a is not None
            if a.edit_type == 1:
                continue
            other = _other_procedure(i, codes, keys, ok)
            if other is not None:
                ok[i] = True
                unlisted[i] = other
                pending.remove(i)
                progressed = True
        if not progressed:
            break

    out: list[Finding] = []
    for i in range(n):
        a = active[i]
        if a is None:
            continue
        line = lines[i]
        if not ok[i]:
            out.append(finding(table, "ADDON_WITHOUT_PRIMARY", _no_primary(i, a, lines, keys,
                                                                          ok), line))
        elif i in unlisted and _listed_support(i, a, codes, keys, ok) is None:
            out.append(
                finding(table, "ADDON_PRIMARY_UNLISTED", _unlisted(i, a, lines, unlisted[i]), line)
            )
    return out


def _listed_support(
    i: int, a: Addon, codes: list[str], keys: list[tuple[date, str]], ok: list[bool]
) -> int | None:
    """The first line that is a supported, listed primary of add-on line `i`, if any."""
    key = keys[i]
    on = key[0]
    for j, code in enumerate(codes):
        if j != i and ok[j] and keys[j] == key and a.lists(code, on):
            return j
    return None


def _other_procedure(
    i: int, codes: list[str], keys: list[tuple[date, str]], ok: list[bool]
) -> int | None:
    """The first other supported procedure of the same practitioner and date, if any."""
    key = keys[i]
    for j, code in enumerate(codes):
        if j != i and ok[j] and keys[j] == key and is_procedure_code(code):
            return j
    return None


def _listed_text(a: Addon, on: date) -> str:
    listed = a.listed_on(on)
    if not listed:
        return ""
    shown = ", ".join(listed[:_LISTED_SHOWN])
    more = len(listed) - _LISTED_SHOWN
    return shown + (f" or one of {more} more" if more > 0 else "")


def _no_primary(
    i: int, a: Addon, lines: tuple[ServiceLine, ...], keys: list[tuple[date, str]], ok: list[bool]
) -> str:
    on, npi = keys[i]
    line = lines[i]
    listed = _listed_text(a, on)
    if listed and a.edit_type == 1:
        fix = f"bill a listed primary ({listed})"
    elif listed:
        fix = f"bill a listed primary ({listed}) or a primary the payer accepts for it"
    else:
        fix = "bill the primary procedure it adds to (the payer defines which are accepted)"
    return (
        f"Line {line.line_number}: add-on {a.code} has no primary on this claim for {on} by "
        f"practitioner {npi}{_why(i, a, lines, keys, ok)}; {fix} on the same date by the same "
        "practitioner, or remove the add-on."
    )


def _why(
    i: int, a: Addon, lines: tuple[ServiceLine, ...], keys: list[tuple[date, str]], ok: list[bool]
) -> str:
    """Why the nearest candidate primary on the claim does not count, when there is one."""
    on, npi = keys[i]
    for j, other in enumerate(lines):
        code = other.procedure_code
        if j == i or code not in a.primaries:
            continue
        where = f"{code} on line {other.line_number}"
        other_on, other_npi = keys[j]
        if other_on != on:
            return f" ({where} is dated {other_on})"
        if other_npi != npi:
            return f" ({where} is by practitioner {other_npi})"
        if not a.lists(code, on):
            return f" ({where} is not a listed primary of {a.code} on {on})"
        if not ok[j]:
            return f" ({where} is itself an add-on without its primary)"
    return ""


def _unlisted(i: int, a: Addon, lines: tuple[ServiceLine, ...], j: int) -> str:
    line, other = lines[i], lines[j]
    listed = _listed_text(a, line.service_date)
    which = f"listed: {listed}" if listed else "CMS lists none"
    return (
        f"Line {line.line_number}: add-on {a.code} (AOC Type {a.edit_type}) is billed with "
        f"{other.procedure_code} on line {other.line_number}, which is not a CMS-listed primary "
        f"({which}); confirm the payer accepts {other.procedure_code} as its primary, or bill "
        "a listed primary on the same date by the same practitioner."
    )
