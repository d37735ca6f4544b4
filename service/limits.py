"""How much work one input event may cost: the limits the decoder and the verdict builder enforce.

A plain value, so the pure layers (decoder, verdicts) never read settings: the shell turns
`LimitSettings` into a `Limits` (`LimitSettings.limits()`), tests build their own. The defaults
are the published contract: `schemas/claim.submitted.v1.json` states them (maxItems, maxLength).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["DEFAULT_LIMITS", "MAX_INTEGER", "Limits"]

MAX_INTEGER = 2**31 - 1
"""Largest integer a claim field takes (a signed 32-bit integer, safe in every consumer)."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_event_bytes: int = 262_144
    """Larger events are dead letters (`too-large`) before any parsing."""
    max_service_lines: int = 50
    """An 837P claim carries at most 50 service lines (loop 2400 repeat)."""
    max_diagnosis_codes: int = 24
    """An 837P claim carries at most 12 diagnosis codes (HI segment, loop 2300); 13 up to this
    limit get the engine's DIAGNOSIS_TOO_MANY with every other finding, more are malformed."""
    max_codes_per_line: int = 12
    """Most modifiers, and most diagnosis pointers, on one service line. The 837P carries 4 of
    each; 5 up to this limit get the engine's MODIFIER_TOO_MANY / DIAGNOSIS_POINTER_INVALID."""
    max_string_length: int = 128
    """Longest text field, in characters (X12 identifiers are at most 80)."""
    max_findings: int = 100
    """Most findings in one verdict; the rest are summed up in one FINDINGS_TRUNCATED finding."""
    comma_budget: int = field(init=False, repr=False, compare=False)
    """Events with more commas than this are counted before they are validated (see decode)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name) if f.init else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{f.name} must be a positive integer")
        if self.max_findings < 2:
            raise ValueError("Limits.max_findings must be at least 2 (one finding and a summary)")
        # A claim at every limit has about this many commas: each line's fields and lists, the
        # diagnosis list and the event's own fields. Any claim below it takes the fast path.
        per_line = 16 + 2 * self.max_codes_per_line
        budget = self.max_service_lines * per_line + self.max_diagnosis_codes + 64
        object.__setattr__(self, "comma_budget", budget)


DEFAULT_LIMITS = Limits()
