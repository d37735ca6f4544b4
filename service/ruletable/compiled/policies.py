"""What the diagnoses, units, providers and payers rules read: compiled payer policies, MUE limits,
spinal regions and the ICD-10-CM code set, all frozen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from service.ruletable.compiled.diagnoses import DiagnosisCodeSet, icd_display
from service.ruletable.compiled.provenance import Provenance

__all__ = [
    "CodePairing", "LevelLimit", "LineRules", "MueLimit", "PayerRules", "Policies", "PolicyRef",
]


@dataclass(frozen=True, slots=True)
class MueLimit:
    """The most units of one code for one patient, per line (MAI 1) or per date (MAI 2/3)."""

    code: str
    limit: int
    mai: Literal[1, 2, 3]
    rationale: str = ""
    """Why the limit is what it is (the MUE Rationale column, or the curated basis)."""


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """One payer policy: its id, what it is, when it applies and where it is written."""

    policy_id: str
    title: str
    effective_from: date | None
    """First day in effect; None = in effect for every date the validator sees."""
    effective_to: date | None
    """Last day in effect (inclusive); None = still in effect."""
    reference: str
    url: str

    def in_effect(self, on: date) -> bool:
        start, end = self.effective_from, self.effective_to
        return (start is None or on >= start) and (end is None or on <= end)


@dataclass(frozen=True, slots=True)
class CodePairing:
    """An anchor code (sedation, imaging) billed with any of `procedures` on the same date."""

    policy: PolicyRef
    anchors: frozenset[str]
    procedures: frozenset[str]


@dataclass(frozen=True, slots=True)
class LevelLimit:
    """At most `max_levels` levels per spinal region per session (date of service)."""

    policy: PolicyRef
    max_levels: int
    region_of: Mapping[str, str]
    """Code -> region, for the codes that count."""
    per_unit: frozenset[str]
    """Codes whose units are levels (`third and any additional level`); others count 1 each."""
    per_session: bool = False
    """True: the levels of every region on one date count together (`region_of` maps each code
    to one session group)."""


@dataclass(frozen=True, slots=True)
class LineRules:
    """What one payer's policies ask of a line of one code: one look-up per line."""

    same_date: bool
    """The code anchors a sedation or imaging pairing: the claim needs the same-date checks."""
    levels: int
    """0: no level limit counts the code; 1: a line is one level; 2: its units are levels."""
    noncovered: tuple[PolicyRef, ...]
    expected: tuple[tuple[str, PolicyRef], ...]
    """(modifier the payer expects on the line, policy)."""


@dataclass(frozen=True, slots=True)
class PayerRules:
    """What one payer expects: national edits on/off, bilateral format, compiled policies."""

    payer_id: str
    name: str
    aoc_edits: bool
    mue_edits: bool
    split_lines: bool
    """True when the payer wants a bilateral service as an RT line plus an LT line."""
    modifier_50_cpt: frozenset[str]
    """Bilateral-indicator-2 codes for which the payer follows CPT and accepts modifier 50."""
    noncovered: Mapping[str, tuple[PolicyRef, ...]]
    modifier_expected: Mapping[str, tuple[tuple[str, PolicyRef], ...]]
    """Code -> (modifier the payer expects on the line, policy)."""
    modifier_51: tuple[PolicyRef, ...]
    sedation: tuple[CodePairing, ...]
    imaging: tuple[CodePairing, ...]
    level_limits: tuple[LevelLimit, ...]
    mpfs_status: bool = False
    """True when the payer applies Medicare's fee-schedule status (PROCEDURE_STATUS_NOT_PAYABLE)."""
    global_surgery: bool = False
    """True when the payer applies Medicare's global surgery rules (MODIFIER_57_MINOR_PROCEDURE)."""

    # Derived from the fields above on construction.
    level_min: int = field(init=False, repr=False, compare=False)
    """The smallest `max_levels` of the payer's level limits (0 when it has none): with the
    levels a claim's lines add up to, a bound that tells whether the per-region, per-date count
    is needed at all."""
    line_rules: Mapping[str, LineRules] = field(init=False, repr=False, compare=False)
    """Every code a policy of the payer names for a line (coverage, expected modifier, same-date
    anchor, level) -> what they ask: a line of any other code needs only the modifier-51 check."""

    def __post_init__(self) -> None:
        anchors = {c for pairing in (*self.sedation, *self.imaging) for c in pairing.anchors}
        counted = {c for limit in self.level_limits for c in limit.region_of}
        per_unit = {c for limit in self.level_limits for c in limit.per_unit}
        codes = {*self.noncovered, *self.modifier_expected, *anchors, *counted}
        rules = {
            code: LineRules(
                code in anchors,
                (2 if code in per_unit else 1) if code in counted else 0,
                self.noncovered.get(code, ()),
                self.modifier_expected.get(code, ()),
            )
            for code in codes
        }
        init = object.__setattr__  # frozen: the derived fields are set once, here
        init(self, "level_min", min((limit.max_levels for limit in self.level_limits), default=0))
        init(self, "line_rules", rules)


@dataclass(frozen=True, slots=True)
class Policies:
    """Everything the diagnoses, units, providers and payers rules read."""

    version: str
    """Appended to the table version, e.g. `icd10cm-2026apr.mue-descriptor.payers-1.regions-1`."""
    icd10cm: DiagnosisCodeSet
    dx_region: Mapping[str, str]
    """Diagnosis key (no dot) -> region name; diagnoses not listed have no region."""
    procedure_region: Mapping[str, str]
    region_labels: Mapping[str, str]
    mue: Mapping[str, MueLimit]
    mue_reference: str
    """What the limits rest on: the CMS file and quarter, or the CPT-descriptor fallback."""
    national: PayerRules
    payers: Mapping[str, PayerRules]
    provenance: tuple[Provenance, ...]
    digest_inputs: Mapping[str, bytes]
    """Inputs outside the table directory (the code set), for the table digest."""

    # Derived from the fields above on construction.
    regional: Mapping[str, tuple[str, str]] = field(init=False, repr=False, compare=False)
    """Each diagnosis billable in every edition that has a region, as it may be written (with
    and without the dot) -> (its key, its region): one look-up in a small map."""

    def __post_init__(self) -> None:
        # Only codes billable in every shipped edition: the others are judged by date first.
        stable = self.icd10cm.written
        regional = {k: (k, region) for k, region in self.dx_region.items() if k in stable}
        regional.update({icd_display(key): hit for key, hit in regional.items() if len(key) > 3})
        object.__setattr__(self, "regional", regional)  # frozen: set once, here

    def payer(self, payer_id: str) -> PayerRules:
        """The rules of `payer_id`; any payer not configured gets the national rules."""
        return self.payers.get(payer_id, self.national)
