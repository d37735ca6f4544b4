"""When a procedure code is in use and whether Medicare pays it, as the procedure-code rules read.

Built by `service.ruletable.load_codes` from the AOC rows' dates and the fee schedule's status
indicator; frozen like the rest of the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = ["CodeWindow", "NotPayable", "PayerPrimary"]


@dataclass(frozen=True, slots=True)
class CodeWindow:
    """The days a code is known to be in use, and the file that says so."""

    code: str
    first: date | None
    """First day in use, when known (None: no known start)."""
    first_source: str
    last: date | None
    """Last day in use, inclusive (None: still in use)."""
    last_source: str


@dataclass(frozen=True, slots=True)
class NotPayable:
    """A code whose fee-schedule status makes it not payable by Medicare."""

    status: str
    meaning: str
    exempt: frozenset[str]
    """Modifiers that say the line is billed for a denial (GY, GX): no finding then."""
    use: str | None
    """The code Medicare uses instead (status I), when the table knows it."""
    source: str


@dataclass(frozen=True, slots=True)
class PayerPrimary:
    """Primaries one payer accepts for an add-on beyond the CMS list, on its dates."""

    primaries: frozenset[str]
    start: date
    end: date
    """Inclusive; date.max while in effect."""
    reference: str
