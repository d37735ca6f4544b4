"""Validates and compiles the data of the diagnoses, units, providers and payers rules.

Four sources, each checked before the engine sees it (a problem raises `RuleTableError` naming
file, row or field):
- the ICD-10-CM editions, each in force on its dates (`service.ruletable.icd10cm`);
- `mue.csv` + `mue_source.json`: unit limits per code (imported by
  `service.ruletable.importers.mue`);
- `dx_regions.yaml`: the spinal region of facet procedure codes and of common spine diagnoses
  (curated; each code must be billable in the shipped code set);
- `payers.yaml`: per payer, which national edits apply, the bilateral format it expects, and its
  effective-dated policies; `national` is what every payer gets, and all an unlisted one gets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import TypeAdapter

from service.ruletable.codes import expand_code_spec
from service.ruletable.compiled.diagnoses import DiagnosisCodeSet, icd_key
from service.ruletable.compiled.policies import (
    CodePairing,
    LevelLimit,
    MueLimit,
    PayerRules,
    Policies,
    PolicyRef,
)
from service.ruletable.compiled.provenance import Provenance
from service.ruletable.file_models import (
    MUE_COLUMNS,
    MUE_FILE,
    MUE_SOURCE_FILE,
    PAYERS_FILE,
    REGIONS_FILE,
    MueRow,
    MueSource,
)
from service.ruletable.file_models_payers import (
    Modifier51Policy,
    ModifierExpectedPolicy,
    NoncoveredPolicy,
    PayerEntry,
    PayersFile,
    Policy,
    RegionsFile,
    SamePolicy,
)
from service.ruletable.files import RuleTableError, csv_records, json_data, validated, yaml_data
from service.ruletable.icd10cm import load_icd10cm

__all__ = ["load_policies"]

NATIONAL = "*"
"""The payer id of the national rules in `Policies.national`."""
SESSION = "session"
"""The one group a per-session level limit counts its codes in."""

_PAYERS = TypeAdapter(PayersFile)
_REGIONS = TypeAdapter(RegionsFile)
_MUE_ROWS = TypeAdapter(list[MueRow])
_MUE_SOURCE = TypeAdapter(MueSource)


def load_policies(files: Mapping[str, bytes]) -> Policies:
    """Validate and compile the issue-4 data among `files` (name -> bytes of the table dir)."""
    icd, icd_source = load_icd10cm(files)
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
        *(
            Provenance(f"icd10cm-{e.edition}", f"{e.package}: {e.source_file}",
                       f"{e.label}, in force {e.effective_from} to {e.effective_to}",
                       e.source_sha256, e.codes)
            for e in icd_source.editions
        ),
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
        digest_inputs={},  # the code sets are table files now, digested with the others
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
            if icd.newest(key) != "b":
                newest = icd.editions[-1].label
                raise RuleTableError(
                    name, "-", f"{where}.codes", f"{code} is not a billable code in {newest}"
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
    policies: Sequence[tuple[str, Policy]],
    regions: Mapping[str, str],
) -> PayerRules:
    noncovered: dict[str, list[PolicyRef]] = {}
    expected: dict[str, list[tuple[str, PolicyRef]]] = {}
    modifier_51: list[PolicyRef] = []
    sedation: list[CodePairing] = []
    imaging: list[CodePairing] = []
    levels: list[LevelLimit] = []
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
                    region_of[code] = SESSION if p.per == "session" else group.region
                    if group.count == "per_unit":
                        per_unit.add(code)
            levels.append(
                LevelLimit(
                    ref, p.max_levels, region_of, frozenset(per_unit),
                    per_session=p.per == "session",
                )
            )
    return PayerRules(
        payer_id=payer_id,
        name=entry.name,
        aoc_edits=entry.national_edits.aoc,
        mue_edits=entry.national_edits.mue,
        mpfs_status=entry.national_edits.mpfs_status,
        global_surgery=entry.national_edits.global_surgery,
        split_lines=entry.bilateral_format == "rt_lt",
        modifier_50_cpt=frozenset(
            _expand(PAYERS_FILE, f"payers.{payer_id}.modifier_50_follows_cpt",
                    entry.modifier_50_follows_cpt)
        ),
        noncovered={c: tuple(v) for c, v in noncovered.items()},
        modifier_expected={c: tuple(v) for c, v in expected.items()},
        modifier_51=tuple(modifier_51),
        sedation=tuple(sedation),
        imaging=tuple(imaging),
        level_limits=tuple(levels),
    )
