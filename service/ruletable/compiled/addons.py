"""Add-on code edits of the CMS NCCI AOC file, compiled once for the pairing and modifiers rules.

An `AddonCode` is built from its pairing rows; on construction it lays the rows out for the hot
path (date windows as tuples, the listed primaries per era), so a rule asks each question with
one bisect or one comparison and never walks the rows.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

__all__ = ["AddonCode", "AddonPairing"]

_DAY = timedelta(days=1)
_NO_PRIMARIES: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AddonPairing:
    """One listed (add-on, primary) edit of the CMS NCCI AOC file, with its effective window."""

    primary: str
    effective: date
    deleted: date | None
    """Last day the pairing is in effect (inclusive); None while active."""
    primary_deleted: date | None
    """Last day the primary code itself is valid (inclusive); None while active."""
    edit_type: Literal[1, 2, 3] | None = None
    """The AOC edit type of this row; None: the add-on's `edit_type`."""

    @property
    def last_day(self) -> date:
        """Last day the primary counts (pairing and primary code both in effect); date.max while
        both are active."""
        return min(self.deleted or date.max, self.primary_deleted or date.max)


@dataclass(frozen=True, slots=True)
class AddonCode:
    """An add-on code (AOC Type 1, 2 or 3) and its listed primaries."""

    code: str
    edit_type: Literal[1, 2, 3]
    deleted: date | None
    """Last day the add-on code is valid (inclusive); None while active."""
    pairings: tuple[AddonPairing, ...]
    contractor_defined: bool
    """True when the file lists `CCCCC`: contractors may accept primaries of their own."""
    contractor_rows: tuple[tuple[date, date, Literal[2, 3]], ...] = ()
    """The `CCCCC` rows' windows (effective .. deleted or date.max) and edit types; empty in a
    hand-built add-on, where `contractor_defined` holds on every date."""

    # Laid out from the fields above on construction.
    windows: Mapping[str, tuple[tuple[date, date], ...]] = field(
        init=False, repr=False, compare=False
    )
    """Primary -> windows in which that primary counts (pairing and primary code in effect)."""
    eras: tuple[date, ...] = field(init=False, repr=False, compare=False)
    """Dates on which the set of listed primaries changes, ascending."""
    era_sets: tuple[frozenset[str], ...] = field(init=False, repr=False, compare=False)
    """The primaries in effect from each era's date: one bisect, then a set hit per line."""
    era_lists: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)
    """The same primaries, sorted, as messages name them."""
    type_eras: tuple[date, ...] = field(init=False, repr=False, compare=False)
    type_by_era: tuple[Literal[1, 2, 3], ...] = field(init=False, repr=False, compare=False)
    """The edit type before the first date of `type_eras`, then in force from each of them: the
    rows in effect decide (20701 is Type 1 until 2022 and Type 3 from 2023), not the newest."""
    edit_bounds: tuple[date, ...] = field(init=False, repr=False, compare=False)
    edit_by_bound: tuple[frozenset[str] | None, ...] = field(init=False, repr=False, compare=False)
    """`edit_on` before the first date of `edit_bounds`, then from each of them: the add-on's
    validity, its rows' windows and its eras folded into one bisect."""

    def __post_init__(self) -> None:
        windows: dict[str, list[tuple[date, date]]] = {}
        spans: list[tuple[date, date]] = []
        for p in self.pairings:
            spans.append((p.effective, p.deleted or date.max))
            windows.setdefault(p.primary, []).append((p.effective, p.last_day))
        eras = sorted(
            {start for ws in windows.values() for start, _ in ws}
            | {end + _DAY for ws in windows.values() for _, end in ws if end < date.max}
        )
        sets = tuple(
            frozenset(p for p, ws in windows.items() if any(s <= on <= e for s, e in ws))
            for on in eras
        )
        init = object.__setattr__  # frozen: the derived fields are set once, here
        init(self, "windows", {k: tuple(v) for k, v in windows.items()})
        init(self, "eras", tuple(eras))
        init(self, "era_sets", sets)
        init(self, "era_lists", tuple(tuple(sorted(s)) for s in sets))
        typed: list[tuple[date, date, Literal[1, 2, 3]]] = [
            (p.effective, p.deleted or date.max, p.edit_type or self.edit_type)
            for p in self.pairings
        ]
        typed += self.contractor_rows
        bounds = sorted({s for s, _, _ in typed} | {e + _DAY for _, e, _ in typed if e < date.max})
        types: list[Literal[1, 2, 3]] = []
        for on in bounds:
            found = [t for s, e, t in typed if s <= on <= e]
            types.append(max(found) if found else self.edit_type)
        init(self, "type_eras", tuple(bounds))
        init(self, "type_by_era", (self.edit_type, *types))
        # Days the code is valid, and (unless contractors may define primaries on any date)
        # disjoint windows in which some edit row is in effect: usually one.
        last_day = self.deleted or date.max
        spans.extend((s, e) for s, e, _ in self.contractor_rows)
        rows_in_effect = _merged(spans)
        gated = bool(self.contractor_rows) or not self.contractor_defined

        def edit_from_rows(on: date) -> frozenset[str] | None:
            if on > last_day or (gated and not any(s <= on <= e for s, e in rows_in_effect)):
                return None
            era = bisect_right(eras, on) - 1
            return sets[era] if era >= 0 else _NO_PRIMARIES

        changes = {*eras, *(start for start, _ in rows_in_effect)}
        changes.update(end + _DAY for end in (*(e for _, e in rows_in_effect), last_day)
                       if end < date.max)
        edit_bounds = tuple(sorted(changes))
        init(self, "edit_bounds", edit_bounds)
        init(self, "edit_by_bound", tuple(edit_from_rows(on) for on in (date.min, *edit_bounds)))

    def edit_on(self, on: date) -> frozenset[str] | None:
        """The listed primaries in effect on `on`; None when the code is no add-on edit on `on`.

        The two questions the pairing rule asks of every add-on line, in one call.
        """
        return self.edit_by_bound[bisect_right(self.edit_bounds, on)]

    def type_on(self, on: date) -> Literal[1, 2, 3]:
        """The AOC edit type in force on `on` (the add-on's `edit_type` outside every row)."""
        return self.type_by_era[bisect_right(self.type_eras, on)]

    def contractor_on(self, on: date) -> bool:
        """Contractors may define primaries of their own on `on` (a `CCCCC` row in effect)."""
        if not self.contractor_rows:
            return self.contractor_defined
        return any(start <= on <= end for start, end, _ in self.contractor_rows)

    def is_addon_on(self, on: date) -> bool:
        """An add-on edit applies when the code is valid and any of its pairing rows (or the
        contractor-defined row) is in effect on that date."""
        return self.edit_on(on) is not None

    def primaries_on(self, on: date) -> frozenset[str]:
        """The listed primaries of this add-on in effect on `on`."""
        era = bisect_right(self.eras, on) - 1
        return self.era_sets[era] if era >= 0 else _NO_PRIMARIES

    def listed_on(self, on: date) -> tuple[str, ...]:
        """The listed primaries in effect on `on`, sorted (for messages)."""
        era = bisect_right(self.eras, on) - 1
        return self.era_lists[era] if era >= 0 else ()

    def lists(self, primary: str, on: date) -> bool:
        """Is `primary` a listed primary of this add-on on `on`?"""
        return primary in self.primaries_on(on)


def _merged(windows: list[tuple[date, date]]) -> tuple[tuple[date, date], ...]:
    """The days of `windows` as the fewest disjoint windows, ascending (touching ones join)."""
    out: list[tuple[date, date]] = []
    for start, end in sorted(windows):
        if out and (out[-1][1] == date.max or start <= out[-1][1] + _DAY):
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return tuple(out)
