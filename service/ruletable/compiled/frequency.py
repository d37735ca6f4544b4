"""Frequency limits over rolling windows (the history family's `FREQUENCY_LIMIT`), compiled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from service.ruletable.compiled.policies import PolicyRef

__all__ = ["FrequencyLimit", "FrequencyLimits", "longest_window_days"]


@dataclass(frozen=True, slots=True)
class FrequencyLimit(PolicyRef):
    """A payer policy of at most `max_sessions` sessions (dates) per spinal region in
    `window_days` days, in effect on the dates of `PolicyRef.in_effect`."""

    payer: str
    max_sessions: int
    window_days: int
    regions: Mapping[str, str]
    """Procedure code -> the spinal region its sessions count in."""
    apart: bool
    """Count diagnostic lines (`diagnostic_modifier`) apart from therapeutic ones."""
    diagnostic_modifier: str


FrequencyLimits = Mapping[str, tuple[FrequencyLimit, ...]]
"""Payer id -> its frequency limits."""


def longest_window_days(limits: FrequencyLimits | None) -> int:
    """The longest window any limit looks back over (0: none)."""
    if not limits:
        return 0
    return max(limit.window_days for group in limits.values() for limit in group)
