"""The compiled rule table: frozen plain lookups the engine reads, built once at start-up.

Nothing here parses files or validates: `service.ruletable.load` does that and hands the engine
these structures, so evaluation is dictionary look-ups and comparisons only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # policies.py imports this module; the annotation is only a string here
    from service.ruletable.policies import Policies

__all__ = ["AddonCode", "AddonPairing", "FeeIndicators", "Provenance", "RuleInfo", "RuleTable"]


@dataclass(frozen=True, slots=True)
class AddonPairing:
    """One listed (add-on, primary) edit of the CMS NCCI AOC file, with its effective window."""

    primary: str
    effective: date
    deleted: date | None
    """Last day the pairing is in effect (inclusive); None while active."""
    primary_deleted: date | None
    """Last day the primary code itself is valid (inclusive); None while active."""

    def in_effect(self, on: date) -> bool:
        if on < self.effective:
            return False
        if self.deleted is not None and on > self.deleted:
            return False
        return self.primary_deleted is None or on <= self.primary_deleted


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

    def is_addon_on(self, on: date) -> bool:
        """An add-on edit applies when any of its pairing rows is in effect on that date."""
        if self.deleted is not None and on > self.deleted:
            return False
        return any(on >= p.effective and (p.deleted is None or on <= p.deleted)
                   for p in self.pairings) or self.contractor_defined

    def primaries_on(self, on: date) -> frozenset[str]:
        return frozenset(p.primary for p in self.pairings if p.in_effect(on))


@dataclass(frozen=True, slots=True)
class FeeIndicators:
    """MPFS payment-policy indicators for one code (its RVU-file row without a modifier)."""

    status: str
    global_days: str
    mult_proc: str
    bilateral: str
    pctc: str


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """Catalogue entry of one rule: what the README table and every finding cite."""

    rule_id: str
    family: str
    severity: Literal["error", "warning"]
    summary: str
    action: str
    reference: str


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one shipped table came from."""

    table: str
    source_file: str
    release: str
    source_sha256: str
    rows: int


@dataclass(frozen=True, slots=True)
class RuleTable:
    """Everything the engine knows. Built by `service.ruletable.load`, never mutated."""

    version: str
    """Names the data a verdict was judged by, e.g. `aoc-2026q2.pfs-2025jan.pos-2024.curated-1`."""
    digest: str
    """sha256 over the shipped data files: two tables with one digest judge identically."""
    rules: Mapping[str, RuleInfo]
    addons: Mapping[str, AddonCode]
    fee: Mapping[str, FeeIndicators]
    pos_codes: Mapping[str, str]
    """CMS place-of-service code -> name."""
    pos_allowed: Mapping[str, frozenset[str]]
    """Procedure code -> places of service allowed (curated); codes absent here are unrestricted."""
    provenance: tuple[Provenance, ...] = field(default=())
    bilateral_split_payers: frozenset[str] = field(default=frozenset())
    """Payer ids that want a bilateral service as two lines (RT + LT) instead of one line with 50;
    BILATERAL_SPLIT_LINES stays quiet for them. Empty = every payer follows Medicare (F-MOD-50)."""
    policies: Policies | None = None
    """ICD-10-CM, MUE and payer data of the diagnoses, units, providers and payers families
    (`service.ruletable.policies`); None in hand-built tables, where those families stay silent."""
