"""Compiled E/M code families: which codes take 25/57, which refuse 59/X, and visit settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["SettingRule", "Visits"]


@dataclass(frozen=True, slots=True)
class SettingRule:
    """Places of service a visit family's definition excludes, with why and where it is written."""

    name: str
    label: str
    forbidden: frozenset[str]
    reason: str
    reference: str


@dataclass(frozen=True, slots=True)
class Visits:
    version: str
    """`visits-<curated_version>`, appended to the table version."""
    em_modifier_codes: frozenset[str]
    """Codes that may carry 25 or 57."""
    no_distinct_modifier: frozenset[str]
    """Codes on which 59 and XE/XP/XS/XU do not belong."""
    setting_of: Mapping[str, SettingRule]
    """Visit code -> the setting rule of its family."""
