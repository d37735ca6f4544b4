"""The ICD-10-CM code sets as the diagnoses rules read them: every shipped edition, dated.

A code's status in each edition is one flag (`b` billable, `h` heading, `.` not in it). The
hot path asks one question per diagnosis: is it billable in every shipped edition (`written`)?
Only the rest, and claims dated outside the shipped editions, take the dated look-ups.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

__all__ = ["CodeSetEdition", "DiagnosisCodeSet", "icd_display", "icd_key"]


def icd_key(code: str) -> str:
    """The code-set key of a diagnosis as written: `M54.50` and `M5450` -> `M5450`.

    A dot is accepted only where ICD-10-CM puts it, after the third character; anything else is
    kept as is and so will not be found.
    """
    if len(code) > 4 and code[3] == ".":
        return code[:3] + code[4:]
    return code


def icd_display(key: str) -> str:
    """`M5450` -> `M54.50` (the way the code set prints codes)."""
    return key if len(key) <= 3 else f"{key[:3]}.{key[3:]}"


@dataclass(frozen=True, slots=True)
class CodeSetEdition:
    """One shipped edition and the days it is in force (inclusive)."""

    name: str
    """Short label for the version string, e.g. `2026apr`."""
    label: str
    """For people, e.g. `ICD-10-CM FY2026 (Apr 2026 release)`."""
    start: date
    end: date


@dataclass(frozen=True, slots=True)
class DiagnosisCodeSet:
    """Every shipped ICD-10-CM edition, oldest first, and each code's flag in each."""

    editions: tuple[CodeSetEdition, ...]
    flags: Mapping[str, str]
    """Code without dot -> one flag per edition (`b`, `h` or `.`)."""
    source_file: str
    source_sha256: str

    # Derived from the fields above on construction.
    release: str = field(init=False, repr=False, compare=False)
    """The editions for the version string, e.g. `2021jan-2023oct-2025apr-2026apr`."""
    label: str = field(init=False, repr=False, compare=False)
    written: Mapping[str, str] = field(init=False, repr=False, compare=False)
    """Every code billable in every shipped edition, as it may be written (with and without the
    dot) -> its key: the hot path's one look-up per diagnosis."""
    spans: Mapping[str, tuple[str, date, date]] = field(init=False, repr=False, compare=False)
    """Every other code billable in a run of consecutive shipped editions (the latest run), as
    it may be written -> (its key, the run's first day, its last day): a claim dated inside the
    run needs no dated look-up (M54.50, billable from FY2022 on)."""
    first: date = field(init=False, repr=False, compare=False)
    last: date = field(init=False, repr=False, compare=False)
    """The first and last day some shipped edition (or a pair bracketing the day) covers."""
    ordered: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """Every code, sorted: `billable_under` bisects it (only when writing a finding)."""
    verdicts: Mapping[str, str] = field(init=False, repr=False, compare=False)
    """Each code not billable in every edition -> one verdict per slot index (`slot_index`):
    `b` billable, `u` billable in only one of two bracketing editions, `h` a heading, `.` no
    code. Built once, so the engine reads one character per date."""
    said: Mapping[tuple[int, str], str] = field(init=False, repr=False, compare=False)
    """(slot index, the code's flags in the slot's editions) -> what each edition says and why
    that is uncertain, as message text; every combination, built once."""
    _starts: tuple[date, ...] = field(init=False, repr=False, compare=False)
    _ends: tuple[date, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        every = "b" * len(self.editions)
        stable = [c for c, f in self.flags.items() if f == every]
        init = object.__setattr__  # frozen: the derived fields are set once, here
        init(self, "release", "-".join(e.name for e in self.editions))
        init(self, "label", ", ".join(e.label for e in self.editions))
        init(self, "written", {**{c: c for c in stable},
                               **{icd_display(c): c for c in stable if len(c) > 3}})
        spans: dict[str, tuple[str, date, date]] = {}
        for code, flags in self.flags.items():
            run = _last_run(flags)
            if run is not None and flags != every:
                span = (code, self.editions[run[0]].start, self.editions[run[1]].end)
                spans[code] = span
                if len(code) > 3:
                    spans[icd_display(code)] = span
        init(self, "spans", spans)
        init(self, "first", self.editions[0].start)
        init(self, "last", self.editions[-1].end)
        init(self, "ordered", tuple(sorted(self.flags)))
        init(self, "_starts", tuple(e.start for e in self.editions))
        init(self, "_ends", tuple(e.end for e in self.editions))
        init(self, "verdicts", {c: _verdicts(f) for c, f in self.flags.items() if f != every})
        words = {"b": "billable", "h": "a heading, not billable", ".": "not a code"}
        said: dict[tuple[int, str], str] = {}
        for index in range(2 * len(self.editions) - 1):
            slot = self.slot_editions(index)
            for combo in ("bb", "bh", "b.", "hb", "hh", "h.", ".b", ".h", ".."):
                said[(index, combo[: len(slot)])] = "; ".join(
                    f"{words[f]} in {self.editions[i].label}"
                    for i, f in zip(slot, combo, strict=False)
                ) + (
                    ". The edition in force on that date is not shipped, so whether the code "
                    "was billable then is uncertain; check it against the ICD-10-CM code set of "
                    "that date."
                )
        init(self, "said", said)

    def slot_index(self, on: date) -> int:
        """-1 outside the shipped editions; 2i in edition i; 2i+1 between editions i and i+1."""
        if on < self.first or on > self.last:
            return -1
        at = bisect.bisect_right(self._starts, on) - 1
        return 2 * at if on <= self._ends[at] else 2 * at + 1

    def slot_editions(self, index: int) -> tuple[int, ...]:
        """The editions of a slot index: (i,) or (i, i + 1)."""
        return (index // 2,) if index % 2 == 0 else (index // 2, index // 2 + 1)

    def slot(self, on: date) -> tuple[int, ...]:
        """The editions that judge `on`: the one in force, else the two that bracket it, else
        none (a date before the first or after the last shipped edition)."""
        if on < self.first or on > self.last:
            return ()
        at = bisect.bisect_right(self._starts, on) - 1
        if on <= self.editions[at].end:
            return (at,)
        return (at, at + 1)

    def flags_on(self, key: str, on: date) -> str:
        """The code's flags in the editions that judge `on` (empty outside them)."""
        flags = self.flags.get(key)
        slot = self.slot(on)
        return "".join(flags[i] if flags else "." for i in slot)

    def newest(self, key: str) -> str:
        """The code's flag in the newest shipped edition."""
        flags = self.flags.get(key)
        return flags[-1] if flags else "."

    def billable_under(self, key: str, edition: int = -1, limit: int = 3) -> tuple[str, ...]:
        """Up to `limit` codes billable in `edition` that refine `key` (dotted, for messages)."""
        at = bisect.bisect_left(self.ordered, key)
        found: list[str] = []
        while at < len(self.ordered) and len(found) < limit and self.ordered[at].startswith(key):
            code = self.ordered[at]
            if self.flags[code][edition] == "b" and code != key:
                found.append(icd_display(code))
            at += 1
        return tuple(found)


def _last_run(flags: str) -> tuple[int, int] | None:
    """The first and last edition of the latest run of editions where the code is billable."""
    end = flags.rfind("b")
    if end < 0:
        return None
    start = end
    while start > 0 and flags[start - 1] == "b":
        start -= 1
    return start, end


def _verdicts(flags: str) -> str:
    """One character per slot index: the edition's flag, or for a bracket the shared flag of
    both (`h` when neither is billable but one is a heading) and `u` when only one is billable."""
    out: list[str] = []
    for i, flag in enumerate(flags):
        if i:
            pair = flags[i - 1] + flag
            if "b" in pair:
                out.append("b" if pair == "bb" else "u")
            else:
                out.append("h" if "h" in pair else ".")
        out.append(flag)
    return "".join(out)
