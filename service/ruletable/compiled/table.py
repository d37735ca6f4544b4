"""The compiled rule table: everything the engine reads, frozen, with its look-ups built once.

Nothing here parses files or validates: `service.ruletable.load` does that and hands over these
structures. Each index a rule needs is derived on construction from the table's own fields, so
the engine keeps no state of its own and a table made with `dataclasses.replace` never pairs
with another table's indexes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from service.ruletable.compiled.addons import AddonCode
from service.ruletable.compiled.code_rules import CodeWindow, NotPayable, PayerPrimary
from service.ruletable.compiled.frequency import FrequencyLimits
from service.ruletable.compiled.policies import Policies
from service.ruletable.compiled.provenance import Provenance
from service.ruletable.compiled.visits import Visits

__all__ = ["FeeIndicators", "RuleInfo", "RuleTable", "is_procedure_code"]

_PROCEDURE_SHAPE = re.compile(r"[0-9]{5}|[0-9]{4}[AFMTU]|[A-V][0-9]{4}")
_NO_50 = frozenset({"0", "2", "9"})
"""Bilateral indicators under which modifier 50 is not allowed."""
_BOTH = frozenset({"26", "TC"})
_PCTC_REFUSED: Mapping[str, frozenset[str]] = MappingProxyType({
    "0": _BOTH, "2": _BOTH, "3": _BOTH, "4": _BOTH, "5": _BOTH, "9": _BOTH,
    "6": frozenset({"TC"}), "8": frozenset({"TC"}),
})
"""PC/TC indicator -> the modifiers it refuses (RVU file documentation); 1 takes both, and 7
(therapy services) is not judged. In PPRRVU25_JAN1.csv only indicator-1 codes have 26 and TC rows,
apart from 18 clinical-lab codes (status X, indicator 9) with a 26 row for the physician's
interpretation: status-X codes of indicator 9 refuse only TC."""


def _shape(code: str) -> str:
    """Digits as 9: codes compare by range only within one shape (`0001U` is not in 00100-01999)."""
    return "".join("9" if ch.isdigit() else ch for ch in code)


def is_procedure_code(code: str) -> bool:
    """True when `code` has the shape of a CPT (Category I/II/III, PLA) or HCPCS Level II code."""
    return _PROCEDURE_SHAPE.fullmatch(code) is not None


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
    provenance: tuple[Provenance, ...] = ()
    pos_ruled_out: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Procedure code -> {place: the rule that forbids it}: curated exclusions that rest on a
    cited rule (POS_NOT_ALLOWED); other places outside `pos_allowed` are a heuristic
    (POS_UNLIKELY)."""
    visits: Visits | None = None
    """E/M code families (modifiers 25/57/59, visit settings); None in hand-built tables."""
    policies: Policies | None = None
    """ICD-10-CM, MUE and payer data of the diagnoses, units, providers and payers rules; None in
    hand-built tables, where those rules stay silent."""
    frequency: FrequencyLimits | None = None
    """Payer id -> frequency limits of the history family; None in hand-built tables."""
    code_windows: Mapping[str, CodeWindow] = field(default_factory=dict)
    """Codes with a known first or last day of use (AOC deletion and edit dates)."""
    not_payable: Mapping[str, NotPayable] = field(default_factory=dict)
    """Codes whose fee-schedule status makes them not payable by Medicare."""
    not_primaries: tuple[tuple[str, str, str], ...] = ()
    """(low, high, kind) code ranges that are no plausible primary of a Type 2/3 add-on (visits,
    lab tests, drugs, supplies) unless the AOC file lists them; curated."""
    other_practitioner: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Add-on -> primaries another practitioner of the group and specialty may have reported
    (99292 -> 99291); curated."""
    payer_primaries: Mapping[tuple[str, str], tuple[PayerPrimary, ...]] = field(
        default_factory=dict
    )
    """(payer id, add-on) -> primaries the payer accepts beyond the CMS list; curated."""

    # Indexes derived from the fields above on construction.
    procedure_codes: frozenset[str] = field(init=False, repr=False, compare=False)
    """Codes the table names that have a procedure-code shape: a set hit instead of a regex."""
    no_modifier_50: Mapping[str, str] = field(init=False, repr=False, compare=False)
    """Code -> its bilateral indicator, for the indicators that forbid modifier 50 (0, 2, 9)."""
    bilateral_one: frozenset[str] = field(init=False, repr=False, compare=False)
    """Codes of bilateral indicator 1: one line with modifier 50 for both sides."""
    code_watch: frozenset[str] = field(init=False, repr=False, compare=False)
    """Codes with a known window of use or a status Medicare never pays: any other line costs
    the procedure-code rules one set look-up."""

    pos_flagged: Mapping[str, frozenset[str]] = field(init=False, repr=False, compare=False)
    """Code -> the valid places of service where a place-of-service rule flags it (outside its
    curated places, or excluded by its visit family): one look-up and one membership test per
    line; codes absent here are never flagged for their place."""
    pctc_refused: Mapping[str, tuple[str, frozenset[str]]] = field(
        init=False, repr=False, compare=False
    )
    """Code -> (its PC/TC indicator, the modifiers of 26/TC it refuses)."""

    def not_primary_kind(self, code: str) -> str | None:
        """The kind (visit, lab test, drug, supply) that keeps `code` from being a plausible
        primary, or None. A short scan: asked only of an add-on without a listed primary."""
        shape = _shape(code)
        for low, high, kind in self.not_primaries:
            if low <= code <= high and _shape(low) == shape:
                return kind
        return None

    def __post_init__(self) -> None:
        fee = self.fee
        names = {*fee, *self.addons, *self.pos_allowed}
        init = object.__setattr__  # frozen: the indexes are set once, here
        init(self, "procedure_codes", frozenset(c for c in names if is_procedure_code(c)))
        no_50 = {c: f.bilateral for c, f in fee.items() if f.bilateral in _NO_50}
        init(self, "no_modifier_50", no_50)
        init(self, "bilateral_one", frozenset(c for c, f in fee.items() if f.bilateral == "1"))
        init(self, "code_watch", frozenset({*self.code_windows, *self.not_payable}))
        refused: dict[str, tuple[str, frozenset[str]]] = {}
        for c, f in fee.items():
            mods = _PCTC_REFUSED.get(f.pctc)
            if mods is not None:
                lab = f.pctc == "9" and f.status == "X"
                refused[c] = (f.pctc, frozenset({"TC"}) if lab else mods)
        init(self, "pctc_refused", refused)
        settings = self.visits.setting_of if self.visits is not None else {}
        places = frozenset(self.pos_codes)
        flagged: dict[str, frozenset[str]] = {}
        for c in {*self.pos_allowed, *settings}:
            allowed = self.pos_allowed.get(c)
            setting = settings.get(c)
            flagged[c] = (places - allowed if allowed is not None else frozenset()) | (
                setting.forbidden if setting is not None else frozenset()
            )
        init(self, "pos_flagged", flagged)
