"""Data of the diagnoses, units, providers and payers families: validated at load, compiled once.

Four sources, each checked before the engine sees it (a problem raises `RuleTableError` naming
file, row or field):
- The ICD-10-CM code set, from the `simple-icd-10-cm` package (its April 2026 release = FY2026
  with the April 1, 2026 update). Only the package's code list is read, not its XML tree: that
  gives the same codes as the package's `get_all_codes`/`is_leaf` (a test proves it on every code)
  in about 0.1 s and 10 MB instead of 1.5 s and 180 MB. Billable codes are the leaves; the other
  categories and subcategories are valid but not billable (M54.5 since FY2022, F-DX-M545). Both
  sets are frozensets of codes written without the dot, compiled once per process.
- `mue.csv` + `mue_source.json`: unit limits per code (`service.ruletable.mue`).
- `dx_regions.yaml`: the spinal region of facet procedure codes and of common spine diagnoses
  (curated; each code must be billable in the shipped code set).
- `payers.yaml`: per payer, which national edits apply, the bilateral format it expects, and its
  effective-dated policies; `national` is what every payer gets, and all an unlisted one gets.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import importlib.metadata
import importlib.util
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

from service.ruletable.compiled import Provenance
from service.ruletable.files import RuleTableError, csv_records, json_data, validated, yaml_data
from service.ruletable.mue import MUE_COLUMNS, MUE_FILE, MUE_SOURCE_FILE, MueRow, MueSource
from service.ruletable.schema import expand_code_spec, parse_iso_date

__all__ = [
    "ICD_DISTRIBUTION",
    "PAYERS_FILE",
    "REGIONS_FILE",
    "CodePairing",
    "DiagnosisCodeSet",
    "LevelLimit",
    "MueLimit",
    "PayerRules",
    "Policies",
    "PolicyRef",
    "icd_display",
    "icd_key",
    "load_icd10cm",
    "load_policies",
]

PAYERS_FILE = "payers.yaml"
REGIONS_FILE = "dx_regions.yaml"
ICD_PACKAGE = "simple_icd_10_cm"
ICD_DISTRIBUTION = "simple-icd-10-cm"
NATIONAL = "*"
"""The payer id of the national rules in `Policies.national`."""

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
_CODE_LIST_RE = re.compile(r"code-list-([A-Za-z]+)-(\d{4})\.txt")
_ICD_KEY_RE = re.compile(r"[A-Z][0-9A-Z]{2}[0-9A-Z]{0,4}")  # QA0 (April 2026) has a letter 2nd
_MIN_ICD_CODES = 50_000


# -- compiled structures -----------------------------------------------------------------------


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
class DiagnosisCodeSet:
    """ICD-10-CM codes without dots: billable leaves, and valid codes that are not billable."""

    release: str
    """Short label for the version string, e.g. `2026apr`."""
    label: str
    """For people, e.g. `ICD-10-CM FY2026 (April 2026 release)`."""
    billable: frozenset[str]
    written: Mapping[str, str]
    """Every billable code as it may be written, with and without the dot -> its key: the hot
    path's one look-up per diagnosis (about 150,000 entries, some 15 MB)."""
    headers: frozenset[str]
    """Categories and subcategories that have children: valid codes, never billable."""
    ordered: tuple[str, ...]
    """The billable codes, sorted: `billable_under` bisects it (only when writing a finding)."""
    source_file: str
    source_sha256: str

    def billable_under(self, key: str, limit: int = 3) -> tuple[str, ...]:
        """Up to `limit` billable codes that refine the header `key` (dotted, for messages)."""
        at = bisect.bisect_left(self.ordered, key)
        found: list[str] = []
        while at < len(self.ordered) and len(found) < limit and self.ordered[at].startswith(key):
            found.append(icd_display(self.ordered[at]))
            at += 1
        return tuple(found)


@dataclass(frozen=True, slots=True)
class MueLimit:
    """The most units of one code for one patient, per line (MAI 1) or per date (MAI 2/3)."""

    code: str
    limit: int
    mai: Literal[1, 2, 3]
    rationale: str

    @property
    def per_date(self) -> bool:
        return self.mai != 1


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


@dataclass(frozen=True, slots=True)
class PayerRules:
    """What one payer expects: national edits on/off, bilateral format, compiled policies."""

    payer_id: str
    name: str
    aoc_edits: bool
    mue_edits: bool
    split_lines: bool
    """True when the payer wants a bilateral service as an RT line plus an LT line."""
    noncovered: Mapping[str, tuple[PolicyRef, ...]]
    modifier_expected: Mapping[str, tuple[tuple[str, PolicyRef], ...]]
    """Code -> (modifier the payer expects on the line, policy)."""
    modifier_51: tuple[PolicyRef, ...]
    sedation: tuple[CodePairing, ...]
    imaging: tuple[CodePairing, ...]
    level_limits: tuple[LevelLimit, ...]
    same_date_codes: frozenset[str]
    """Sedation and imaging anchor codes: only a claim with one needs the same-date checks."""
    level_codes: frozenset[str]
    """Codes any level limit counts; with `level_per_unit` and `level_min`, a bound on the levels
    of a claim tells whether the per-region, per-date count is needed at all."""
    level_per_unit: frozenset[str]
    level_min: int
    """The smallest `max_levels` of the payer's level limits (0 when it has none)."""
    line_codes: frozenset[str]
    """Every code a policy of the payer names for a line (coverage, expected modifier, same-date
    anchor, level): a line of any other code needs only the modifier-51 check."""


@dataclass(frozen=True, slots=True)
class Policies:
    """Everything the diagnoses, units, providers and payers families read."""

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

    def payer(self, payer_id: str) -> PayerRules:
        """The rules of `payer_id`; any payer not configured gets the national rules."""
        return self.payers.get(payer_id, self.national)

    def accepts_split_lines(self, payer_id: str) -> bool:
        """Does this payer want bilateral services as RT + LT lines (not one line with 50)?"""
        return self.payer(payer_id).split_lines

    @property
    def bilateral_split_payers(self) -> frozenset[str]:
        """Payer ids that want RT + LT lines (for `RuleTable.bilateral_split_payers`)."""
        return frozenset(p for p, r in self.payers.items() if r.split_lines)


# -- ICD-10-CM from the package ------------------------------------------------------------------


@functools.cache
def load_icd10cm() -> DiagnosisCodeSet:
    """The code set shipped in the installed `simple-icd-10-cm`, compiled once per process."""
    spec = importlib.util.find_spec(ICD_PACKAGE)
    where = ICD_DISTRIBUTION
    if spec is None or not spec.submodule_search_locations:
        raise RuleTableError(where, "-", "-", f"package not installed: pip install {where}")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    lists = sorted(p for p in data.glob("code-list-*.txt") if _CODE_LIST_RE.fullmatch(p.name))
    if len(lists) != 1:
        raise RuleTableError(
            where, "-", "-",
            f"expected one code-list-<Month>-<Year>.txt in {data}, found {len(lists)}",
        )
    path = lists[0]
    match = _CODE_LIST_RE.fullmatch(path.name)
    assert match is not None
    month_name, year = match.group(1).lower(), int(match.group(2))
    if month_name not in _MONTHS:
        raise RuleTableError(path.name, "-", "-", f"{month_name!r} is not a month")
    month = _MONTHS.index(month_name) + 1
    fiscal_year = year + 1 if month >= 10 else year  # FY N runs Oct 1 of N-1 to Sep 30 of N
    raw = path.read_bytes()
    codes: list[str] = []
    for number, line in enumerate(raw.decode("utf-8").split("\n"), start=1):
        key = line.split(" ")[0].replace(".", "").strip()
        if not key or key.isdigit() or "-" in key:  # blank, chapter number, block range
            continue
        if not _ICD_KEY_RE.fullmatch(key):
            raise RuleTableError(path.name, number, "code", f"not an ICD-10-CM code: {key!r}")
        codes.append(key)
    valid = frozenset(codes)
    if len(valid) < _MIN_ICD_CODES:
        raise RuleTableError(
            path.name, "-", "-", f"only {len(valid)} codes; expected at least {_MIN_ICD_CODES}"
        )
    parents = {c[:k] for c in valid for k in range(3, len(c))}
    billable = valid - parents
    try:
        version = importlib.metadata.version(ICD_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - found just above
        version = "?"
    return DiagnosisCodeSet(
        release=f"{year}{month_name[:3]}",
        label=f"ICD-10-CM FY{fiscal_year} ({month_name.capitalize()} {year} release)",
        billable=billable,
        written={**{c: c for c in billable}, **{icd_display(c): c for c in billable if len(c) > 3}},
        headers=valid & parents,
        ordered=tuple(sorted(billable)),
        source_file=f"{ICD_DISTRIBUTION} {version}: {path.name}",
        source_sha256=hashlib.sha256(raw).hexdigest(),
    )


# -- file models ---------------------------------------------------------------------------------

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _optional_date(value: object) -> date | None:
    return None if value is None else parse_iso_date(value)


Text = Annotated[str, Field(min_length=1)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
CodeSpec = Annotated[str, Field(pattern=r"^[0-9A-Z]{5}(?:-[0-9A-Z]{5})?$")]
Codes = Annotated[tuple[CodeSpec, ...], Field(min_length=1)]
MaybeDate = Annotated[date | None, BeforeValidator(_optional_date)]
DxCode = Annotated[str, Field(pattern=r"^[A-Z][0-9A-Z]{2}(?:\.[0-9A-Z]{1,4})?$")]


class _Policy(BaseModel):
    model_config = _FROZEN

    id: Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]*$")]
    title: Text
    effective_from: MaybeDate
    """Required key: write `null` when no start date is known (then it applies to every date)."""
    effective_to: MaybeDate
    reference: Text
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]


class NoncoveredPolicy(_Policy):
    kind: Literal["noncovered"]
    codes: Codes


class LevelGroup(BaseModel):
    model_config = _FROZEN

    codes: Codes
    region: Name
    count: Literal["one", "per_unit"]
    """`one`: the code is one level whatever its units; `per_unit`: each unit is a level."""


class LevelLimitPolicy(_Policy):
    kind: Literal["level_limit"]
    max_levels: Annotated[int, Field(ge=1, strict=True)]
    levels: Annotated[tuple[LevelGroup, ...], Field(min_length=1)]


class ModifierExpectedPolicy(_Policy):
    kind: Literal["modifier_expected"]
    modifier: Annotated[str, Field(pattern=r"^[0-9A-Z]{2}$")]
    codes: Codes


class Modifier51Policy(_Policy):
    kind: Literal["modifier_51_not_expected"]


class SamePolicy(_Policy):
    kind: Literal["sedation_documentation", "imaging_included"]
    anchors: Codes
    """The sedation or imaging codes the finding is about."""
    procedures: Codes


Policy = Annotated[
    NoncoveredPolicy | LevelLimitPolicy | ModifierExpectedPolicy | Modifier51Policy | SamePolicy,
    Field(discriminator="kind"),
]


class NationalEdits(BaseModel):
    model_config = _FROZEN

    aoc: Annotated[bool, Field(strict=True)]
    mue: Annotated[bool, Field(strict=True)]


class PayerEntry(BaseModel):
    model_config = _FROZEN

    name: Text
    national_edits: NationalEdits
    bilateral_format: Literal["modifier_50", "rt_lt"]
    bilateral_reference: Text
    policies: tuple[Policy, ...] = ()


class PayersFile(BaseModel):
    model_config = _FROZEN

    curated_version: Annotated[int, Field(ge=1, strict=True)]
    national: PayerEntry
    payers: dict[Annotated[str, Field(pattern=r"^[A-Z0-9_]+$")], PayerEntry]


class Region(BaseModel):
    model_config = _FROZEN

    name: Name
    label: Text
    reference: Text


class ProcedureRegion(BaseModel):
    model_config = _FROZEN

    region: Name
    codes: Codes
    reference: Text


class DiagnosisRegion(BaseModel):
    model_config = _FROZEN

    region: Name
    codes: Annotated[tuple[DxCode, ...], Field(min_length=1)]
    reference: Text


class RegionsFile(BaseModel):
    model_config = _FROZEN

    curated_version: Annotated[int, Field(ge=1, strict=True)]
    regions: Annotated[tuple[Region, ...], Field(min_length=1)]
    procedures: Annotated[tuple[ProcedureRegion, ...], Field(min_length=1)]
    diagnoses: Annotated[tuple[DiagnosisRegion, ...], Field(min_length=1)]


_PAYERS = TypeAdapter(PayersFile)
_REGIONS = TypeAdapter(RegionsFile)
_MUE_ROWS = TypeAdapter(list[MueRow])
_MUE_SOURCE = TypeAdapter(MueSource)


# -- loading -------------------------------------------------------------------------------------


def load_policies(files: Mapping[str, bytes]) -> Policies:
    """Validate and compile the issue-4 data among `files` (name -> bytes of the table dir)."""
    icd = load_icd10cm()
    for name in (MUE_FILE, MUE_SOURCE_FILE, PAYERS_FILE, REGIONS_FILE):
        if name not in files:
            raise RuleTableError(name, "-", "-", "file not found in the rule-table directory")
    mue, source = _load_mue(files)
    payers_file = validated(PAYERS_FILE, _PAYERS, yaml_data(files, PAYERS_FILE), "none")
    regions_file = validated(REGIONS_FILE, _REGIONS, yaml_data(files, REGIONS_FILE), "none")
    labels, procedure_region, dx_region = _compile_regions(regions_file, icd)
    national, payers = _compile_payers(payers_file, labels)
    version = (
        f"icd10cm-{icd.release}.mue-{source.release}"
        f".payers-{payers_file.curated_version}.regions-{regions_file.curated_version}"
    )
    provenance = (
        Provenance("icd10cm", icd.source_file, icd.label, icd.source_sha256,
                   len(icd.billable) + len(icd.headers)),
        Provenance("mue", source.source_file, source.release, source.source_sha256 or "n/a",
                   source.rows),
        Provenance("payers", PAYERS_FILE, f"curated-{payers_file.curated_version}",
                   _sha(files[PAYERS_FILE]), len(payers)),
        Provenance("dx_regions", REGIONS_FILE, f"curated-{regions_file.curated_version}",
                   _sha(files[REGIONS_FILE]), len(dx_region) + len(procedure_region)),
    )
    return Policies(
        version=version,
        icd10cm=icd,
        dx_region=dx_region,
        procedure_region=procedure_region,
        region_labels=labels,
        mue=mue,
        mue_reference=source.reference,
        national=national,
        payers=payers,
        provenance=provenance,
        digest_inputs={f"(package) {icd.source_file}": icd.source_sha256.encode()},
    )


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _expand(name: str, where: str, specs: Sequence[str]) -> tuple[str, ...]:
    codes: list[str] = []
    for spec in specs:
        try:
            codes.extend(expand_code_spec(spec))
        except ValueError as exc:
            raise RuleTableError(name, "-", where, str(exc)) from None
    if len(set(codes)) != len(codes):
        raise RuleTableError(name, "-", where, "a code is listed twice")
    return tuple(codes)


def _load_mue(files: Mapping[str, bytes]) -> tuple[dict[str, MueLimit], MueSource]:
    source = validated(
        MUE_SOURCE_FILE, _MUE_SOURCE, json_data(files, MUE_SOURCE_FILE), "mapping"
    )
    rows = validated(MUE_FILE, _MUE_ROWS, csv_records(files, MUE_FILE, MUE_COLUMNS), "csv")
    limits: dict[str, MueLimit] = {}
    for number, r in enumerate(rows, start=2):
        if r.code in limits:
            raise RuleTableError(MUE_FILE, number, "code", f"code {r.code} is listed twice")
        mai: Literal[1, 2, 3] = 1 if r.mai == "1" else 2 if r.mai == "2" else 3
        limits[r.code] = MueLimit(code=r.code, limit=r.mue, mai=mai, rationale=r.rationale)
    if source.rows != len(limits):
        raise RuleTableError(
            MUE_SOURCE_FILE, 1, "rows", f"says {source.rows} rows but {MUE_FILE} has {len(limits)}"
        )
    return limits, source


def _compile_regions(
    data: RegionsFile, icd: DiagnosisCodeSet
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    name = REGIONS_FILE
    labels: dict[str, str] = {}
    for r in data.regions:
        if r.name in labels:
            raise RuleTableError(name, "-", "regions.name", f"region {r.name!r} is listed twice")
        labels[r.name] = r.label
    procedure_region: dict[str, str] = {}
    for i, group in enumerate(data.procedures):
        where = f"procedures[{i}]"
        if group.region not in labels:
            raise RuleTableError(name, "-", f"{where}.region", f"unknown region {group.region!r}")
        for code in _expand(name, f"{where}.codes", group.codes):
            if code in procedure_region:
                raise RuleTableError(name, "-", f"{where}.codes", f"{code} is in two regions")
            procedure_region[code] = group.region
    dx_region: dict[str, str] = {}
    for i, dx_group in enumerate(data.diagnoses):
        where = f"diagnoses[{i}]"
        if dx_group.region not in labels:
            raise RuleTableError(
                name, "-", f"{where}.region", f"unknown region {dx_group.region!r}"
            )
        for code in dx_group.codes:
            key = icd_key(code)
            if key not in icd.billable:
                raise RuleTableError(
                    name, "-", f"{where}.codes", f"{code} is not a billable code in {icd.label}"
                )
            if key in dx_region:
                raise RuleTableError(name, "-", f"{where}.codes", f"{code} is listed twice")
            dx_region[key] = dx_group.region
    return labels, procedure_region, dx_region


def _compile_payers(
    data: PayersFile, regions: Mapping[str, str]
) -> tuple[PayerRules, dict[str, PayerRules]]:
    ids: dict[str, str] = {}
    for payer_id, entry in (("national", data.national), *data.payers.items()):
        for i, policy in enumerate(entry.policies):
            owner = "national" if payer_id == "national" else f"payers.{payer_id}"
            where = f"{owner}.policies[{i}]"
            if policy.id in ids:
                raise RuleTableError(
                    PAYERS_FILE, "-", f"{where}.id",
                    f"policy {policy.id} is also in {ids[policy.id]}",
                )
            ids[policy.id] = where
            start, end = policy.effective_from, policy.effective_to
            if start is not None and end is not None and end < start:
                raise RuleTableError(
                    PAYERS_FILE, "-", f"{where}.effective_to", f"{end} is before {start}"
                )
    national_policies = tuple(
        (f"national.policies[{i}]", p) for i, p in enumerate(data.national.policies)
    )
    national = _compile_payer(NATIONAL, data.national, national_policies, regions)
    payers = {
        payer_id: _compile_payer(
            payer_id,
            entry,
            national_policies
            + tuple((f"payers.{payer_id}.policies[{i}]", p) for i, p in enumerate(entry.policies)),
            regions,
        )
        for payer_id, entry in sorted(data.payers.items())
    }
    return national, payers


def _compile_payer(
    payer_id: str,
    entry: PayerEntry,
    policies: Sequence[tuple[str, NoncoveredPolicy | LevelLimitPolicy | ModifierExpectedPolicy
                             | Modifier51Policy | SamePolicy]],
    regions: Mapping[str, str],
) -> PayerRules:
    noncovered: dict[str, list[PolicyRef]] = {}
    expected: dict[str, list[tuple[str, PolicyRef]]] = {}
    modifier_51: list[PolicyRef] = []
    sedation: list[CodePairing] = []
    imaging: list[CodePairing] = []
    levels: list[LevelLimit] = []
    same_date: set[str] = set()
    for where, p in policies:
        ref = PolicyRef(p.id, p.title, p.effective_from, p.effective_to, p.reference, p.url)
        if isinstance(p, NoncoveredPolicy):
            for code in _expand(PAYERS_FILE, f"{where}.codes", p.codes):
                noncovered.setdefault(code, []).append(ref)
        elif isinstance(p, ModifierExpectedPolicy):
            for code in _expand(PAYERS_FILE, f"{where}.codes", p.codes):
                expected.setdefault(code, []).append((p.modifier, ref))
        elif isinstance(p, Modifier51Policy):
            modifier_51.append(ref)
        elif isinstance(p, SamePolicy):
            anchors = frozenset(_expand(PAYERS_FILE, f"{where}.anchors", p.anchors))
            procedures = frozenset(_expand(PAYERS_FILE, f"{where}.procedures", p.procedures))
            if anchors & procedures:
                raise RuleTableError(
                    PAYERS_FILE, "-", f"{where}.procedures",
                    f"{sorted(anchors & procedures)[0]} is also an anchor",
                )
            pairing = CodePairing(ref, anchors, procedures)
            (sedation if p.kind == "sedation_documentation" else imaging).append(pairing)
            same_date |= anchors
        else:
            region_of: dict[str, str] = {}
            per_unit: set[str] = set()
            for j, group in enumerate(p.levels):
                if group.region not in regions:
                    raise RuleTableError(
                        PAYERS_FILE, "-", f"{where}.levels[{j}].region",
                        f"unknown region {group.region!r} (see {REGIONS_FILE})",
                    )
                for code in _expand(PAYERS_FILE, f"{where}.levels[{j}].codes", group.codes):
                    if code in region_of:
                        raise RuleTableError(
                            PAYERS_FILE, "-", f"{where}.levels[{j}].codes", f"{code} listed twice"
                        )
                    region_of[code] = group.region
                    if group.count == "per_unit":
                        per_unit.add(code)
            levels.append(LevelLimit(ref, p.max_levels, region_of, frozenset(per_unit)))
    return PayerRules(
        payer_id=payer_id,
        name=entry.name,
        aoc_edits=entry.national_edits.aoc,
        mue_edits=entry.national_edits.mue,
        split_lines=entry.bilateral_format == "rt_lt",
        noncovered={c: tuple(v) for c, v in noncovered.items()},
        modifier_expected={c: tuple(v) for c, v in expected.items()},
        modifier_51=tuple(modifier_51),
        sedation=tuple(sedation),
        imaging=tuple(imaging),
        level_limits=tuple(levels),
        same_date_codes=frozenset(same_date),
        level_codes=frozenset(c for limit in levels for c in limit.region_of),
        level_per_unit=frozenset(c for limit in levels for c in limit.per_unit),
        level_min=min((limit.max_levels for limit in levels), default=0),
        line_codes=frozenset(
            {*noncovered, *expected, *same_date, *(c for limit in levels for c in limit.region_of)}
        ),
    )
