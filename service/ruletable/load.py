"""Reads the rule-table data files, validates every row, and compiles them into a `RuleTable`.

The service judges claims only by data it has checked: each CSV row and YAML entry passes a
pydantic model (`service.ruletable.file_models`), the files are cross-checked (unique codes and
rule ids, known place-of-service codes, manifest row counts, a catalogue entry for every rule
id the caller names), and any problem raises `RuleTableError` naming the file, row and field.
This is a library: it logs nothing, and knows nothing of the engine (the caller passes the rule
ids the catalogue must cover); the service logs `version` and `digest` at start-up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import TypeAdapter

from service.ruletable.codes import expand_code_spec
from service.ruletable.compiled import (
    AddonCode,
    AddonPairing,
    FeeIndicators,
    Provenance,
    RuleInfo,
    RuleTable,
)
from service.ruletable.file_models import (
    AOC_COLUMNS,
    AOC_FILE,
    FEE_COLUMNS,
    FEE_FILE,
    MANIFEST_FILE,
    POS_ALLOWED_FILE,
    POS_COLUMNS,
    POS_FILE,
    RULES_DIR,
    TABLE_FILES,
    AocRow,
    FeeRow,
    Manifest,
    PosAllowedFile,
    PosRow,
    RuleRow,
    compose_version,
)
from service.ruletable.files import (
    RuleTableError,
    csv_records,
    json_data,
    validated,
    yaml_data,
)
from service.ruletable.load_codes import (
    compile_code_windows,
    compile_not_payable,
    load_addon_primaries,
)
from service.ruletable.load_frequency import load_frequency
from service.ruletable.load_policies import load_policies
from service.ruletable.load_visits import load_visits

__all__ = ["DATA_DIR", "RuleTableError", "read_table", "table_digest"]

DATA_DIR = Path(__file__).parent / "data"
"""The shipped table."""

_DATA_SUFFIXES = frozenset({".csv", ".json", ".yaml", ".gz"})
CONTRACTOR_DEFINED = "CCCCC"

_AOC_ROWS = TypeAdapter(list[AocRow])
_FEE_ROWS = TypeAdapter(list[FeeRow])
_POS_ROWS = TypeAdapter(list[PosRow])
_RULE_ROWS = TypeAdapter(list[RuleRow])
_POS_ALLOWED = TypeAdapter(PosAllowedFile)
_MANIFEST = TypeAdapter(Manifest)
_EDIT_TYPES: Mapping[str, Literal[1, 2, 3]] = {"1": 1, "2": 2, "3": 3}


def read_table(directory: Path | None, *, rule_ids: Collection[str]) -> RuleTable:
    """Validate and compile the table in `directory` (None = the shipped data).

    `rule_ids` are the rules that must have a catalogue entry: every rule the engine can emit.
    """
    root = DATA_DIR if directory is None else Path(directory)
    files = _read_files(root)
    manifest = _load_manifest(files)
    pos_rows = validated(POS_FILE, _POS_ROWS, csv_records(files, POS_FILE, POS_COLUMNS), "csv")
    fee_rows = validated(FEE_FILE, _FEE_ROWS, csv_records(files, FEE_FILE, FEE_COLUMNS), "csv")
    aoc_rows = validated(AOC_FILE, _AOC_ROWS, csv_records(files, AOC_FILE, AOC_COLUMNS), "csv")
    pos_codes = _compile_pos(pos_rows)
    fee = _compile_fee(fee_rows)
    addons = _compile_addons(aoc_rows)
    curated = _load_pos_allowed(files)
    pos_allowed = _compile_pos_allowed(curated, pos_codes, fee)
    pos_ruled_out = _compile_pos_ruled_out(curated, pos_allowed)
    visits = load_visits(files, fee, pos_codes)
    rules = _load_rules(files)
    _check_rule_ids(rules, rule_ids)
    _check_manifest(
        manifest, curated.curated_version,
        {AOC_FILE: len(aoc_rows), FEE_FILE: len(fee_rows), POS_FILE: len(pos_rows)},
    )
    policies = load_policies(files)  # ICD-10-CM, MUE, payers, dx regions (issue-4 families)
    frequency = load_frequency(files)  # the history family's limits
    version = f"{manifest.version}.{policies.version}.{visits.version}"
    if frequency is not None:
        version += f".freq-{frequency[1]}"
    not_primaries, other_practitioner, payer_primaries = load_addon_primaries(
        files, policies.payers
    )
    return RuleTable(
        version=version,
        digest=table_digest({**files, **policies.digest_inputs}),
        rules=rules,
        addons=addons,
        fee=fee,
        pos_codes=pos_codes,
        pos_allowed=pos_allowed,
        pos_ruled_out=pos_ruled_out,
        visits=visits,
        provenance=tuple(
            Provenance(
                table=name, source_file=t.source_file, release=t.release,
                source_sha256=t.source_sha256, rows=t.rows,
            )
            for name, t in sorted(manifest.tables.items())
        ),
        policies=policies,
        frequency=frequency[0] if frequency is not None else None,
        code_windows=compile_code_windows(aoc_rows, manifest.tables["aoc"]),
        not_payable=compile_not_payable(files, fee, manifest.tables["fee_indicators"]),
        not_primaries=not_primaries,
        other_practitioner=other_practitioner,
        payer_primaries=payer_primaries,
    )


def table_digest(files: Mapping[str, bytes]) -> str:
    """sha256 over every data file (relative name, then bytes) in sorted name order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        content = files[name]
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


# -- reading -----------------------------------------------------------------------------------


def _read_files(root: Path) -> dict[str, bytes]:
    if not root.is_dir():
        raise RuleTableError(str(root), "-", "-", "rule-table directory not found")
    files = {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and path.suffix in _DATA_SUFFIXES and "__pycache__" not in path.parts
    }
    for required in (AOC_FILE, FEE_FILE, POS_FILE, POS_ALLOWED_FILE, MANIFEST_FILE):
        if required not in files:
            raise RuleTableError(required, "-", "-", f"file not found in {root}")
    return files


# -- per file ----------------------------------------------------------------------------------


def _load_manifest(files: Mapping[str, bytes]) -> Manifest:
    return validated(MANIFEST_FILE, _MANIFEST, json_data(files, MANIFEST_FILE), "mapping")


def _check_manifest(manifest: Manifest, curated_version: int, counts: Mapping[str, int]) -> None:
    for key in manifest.tables:
        if key not in TABLE_FILES:
            raise RuleTableError(MANIFEST_FILE, 1, f"tables.{key}", "unknown table")
    for key, file in TABLE_FILES.items():
        entry = manifest.tables.get(key)
        if entry is None:
            raise RuleTableError(MANIFEST_FILE, 1, f"tables.{key}", "missing table")
        if entry.file != file:
            raise RuleTableError(
                MANIFEST_FILE, 1, f"tables.{key}.file", f"expected {file!r}, got {entry.file!r}"
            )
        if entry.rows != counts[file]:
            raise RuleTableError(
                MANIFEST_FILE, 1, f"tables.{key}.rows",
                f"says {entry.rows} rows but {file} has {counts[file]}",
            )
    if manifest.curated_version != curated_version:
        raise RuleTableError(
            MANIFEST_FILE, 1, "curated_version",
            f"is {manifest.curated_version} but {POS_ALLOWED_FILE} has {curated_version}; "
            "re-run `claims-validator rules import` to rebuild the manifest",
        )
    expected = compose_version(manifest.tables, curated_version)
    if manifest.version != expected:
        raise RuleTableError(
            MANIFEST_FILE, 1, "version", f"is {manifest.version!r}, the tables say {expected!r}"
        )


def _compile_pos(rows: Sequence[PosRow]) -> dict[str, str]:
    codes: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        if row.code in codes:
            raise RuleTableError(POS_FILE, number, "code", f"duplicate code {row.code!r}")
        codes[row.code] = row.name
    return codes


def _compile_fee(rows: Sequence[FeeRow]) -> dict[str, FeeIndicators]:
    fee: dict[str, FeeIndicators] = {}
    shared: dict[tuple[str, ...], FeeIndicators] = {}
    for number, row in enumerate(rows, start=2):
        if row.code in fee:
            raise RuleTableError(FEE_FILE, number, "code", f"duplicate code {row.code!r}")
        key = (row.status, row.global_days, row.mult_proc, row.bilateral, row.pctc)
        indicators = shared.get(key)
        if indicators is None:
            indicators = shared[key] = FeeIndicators(*key)
        fee[row.code] = indicators
    return fee


def _compile_addons(rows: Sequence[AocRow]) -> dict[str, AddonCode]:
    grouped: dict[str, list[AocRow]] = {}
    seen: set[tuple[str, str, object]] = set()
    for number, row in enumerate(rows, start=2):
        key = (row.add_on_code, row.primary_code, row.effective)
        if key in seen:
            raise RuleTableError(
                AOC_FILE, number, "primary_code",
                f"pair {row.add_on_code}/{row.primary_code} effective {row.effective} listed twice",
            )
        seen.add(key)
        if row.deleted is not None and row.deleted < row.effective:
            raise RuleTableError(
                AOC_FILE, number, "deleted", f"{row.deleted} is before effective {row.effective}"
            )
        grouped.setdefault(row.add_on_code, []).append(row)
    addons: dict[str, AddonCode] = {}
    for code, group in grouped.items():
        # The edit type in force is that of the newest pairing still active (else the newest).
        current = max(group, key=lambda r: (r.deleted is None, r.effective))
        deletions = [r.aoc_deleted for r in group if r.aoc_deleted is not None]
        addons[code] = AddonCode(
            code=code,
            edit_type=_EDIT_TYPES[current.edit_type],
            deleted=max(deletions) if deletions else None,
            pairings=tuple(
                AddonPairing(
                    primary=r.primary_code, effective=r.effective, deleted=r.deleted,
                    primary_deleted=r.primary_deleted, edit_type=_EDIT_TYPES[r.edit_type],
                )
                for r in group
                if r.primary_code != CONTRACTOR_DEFINED
            ),
            contractor_defined=any(
                r.primary_code == CONTRACTOR_DEFINED and r.deleted is None for r in group
            ),
            contractor_rows=tuple(
                (r.effective, r.deleted or date.max, 3 if r.edit_type == "3" else 2)
                for r in group
                if r.primary_code == CONTRACTOR_DEFINED
            ),
        )
    return addons


def _load_pos_allowed(files: Mapping[str, bytes]) -> PosAllowedFile:
    return validated(POS_ALLOWED_FILE, _POS_ALLOWED, yaml_data(files, POS_ALLOWED_FILE), "mapping")


def _compile_pos_allowed(
    curated: PosAllowedFile, pos_codes: Mapping[str, str], fee: Mapping[str, FeeIndicators]
) -> dict[str, frozenset[str]]:
    name = POS_ALLOWED_FILE
    sets: dict[str, frozenset[str]] = {}
    for row, place_set in enumerate(curated.place_sets, start=1):
        if place_set.name in sets:
            raise RuleTableError(name, row, "place_sets.name", f"duplicate set {place_set.name!r}")
        excluded = [p for ex in place_set.excluded for p in ex.places]
        for field, places in (("places", place_set.places), ("excluded.places", excluded)):
            for place in places:
                if place not in pos_codes:
                    raise RuleTableError(
                        name, row, f"place_sets.{field}",
                        f"unknown place-of-service code {place!r} (not in {POS_FILE})",
                    )
            if len(set(places)) != len(places):
                raise RuleTableError(name, row, f"place_sets.{field}", "a place is listed twice")
        both = sorted(set(place_set.places) & set(excluded))
        if both:
            raise RuleTableError(
                name, row, "place_sets.excluded.places", f"{both} both allowed and excluded"
            )
        sets[place_set.name] = frozenset(place_set.places)
    allowed: dict[str, frozenset[str]] = {}
    for row, group in enumerate(curated.procedures, start=1):
        places_for = sets.get(group.set)
        if places_for is None:
            raise RuleTableError(name, row, "procedures.set", f"unknown place set {group.set!r}")
        for spec in group.codes:
            try:
                codes = expand_code_spec(spec)
            except ValueError as exc:
                raise RuleTableError(name, row, "procedures.codes", str(exc)) from None
            # A range is notation: codes inside it that CMS does not list (e.g. 64481) are
            # skipped, but a single code and both ends of a range must exist.
            for end in dict.fromkeys((codes[0], codes[-1])):
                if end not in fee:
                    raise RuleTableError(
                        name, row, "procedures.codes",
                        f"unknown procedure code {end} (not in {FEE_FILE})",
                    )
            for code in codes:
                if code in allowed:
                    raise RuleTableError(
                        name, row, "procedures.codes", f"code {code} is listed twice"
                    )
                if code in fee:
                    allowed[code] = places_for
    return allowed


def _compile_pos_ruled_out(
    curated: PosAllowedFile, allowed: Mapping[str, frozenset[str]]
) -> dict[str, dict[str, str]]:
    """Code -> {place: rule} for the excluded places whose entry cites a rule."""
    by_set = {
        s.name: {p: ex.rule for ex in s.excluded if ex.rule for p in ex.places}
        for s in curated.place_sets
    }
    out: dict[str, dict[str, str]] = {}
    for group in curated.procedures:
        ruled = by_set.get(group.set)
        if not ruled:
            continue
        for spec in group.codes:
            for code in expand_code_spec(spec):
                if code in allowed:
                    out[code] = ruled
    return out


def _load_rules(files: Mapping[str, bytes]) -> dict[str, RuleInfo]:
    rules: dict[str, RuleInfo] = {}
    where: dict[str, str] = {}
    for name in sorted(files):
        parts = name.split("/")
        if len(parts) != 2 or parts[0] != RULES_DIR or not name.endswith(".yaml"):
            continue
        family = parts[1].removesuffix(".yaml")
        data = yaml_data(files, name)
        if not isinstance(data, list):
            raise RuleTableError(name, "-", "-", "expected a list of rule entries")
        entries = validated(name, _RULE_ROWS, data, "list")
        for row, entry in enumerate(entries, start=1):
            if entry.id in rules:
                raise RuleTableError(
                    name, row, "id", f"rule {entry.id} is already defined in {where[entry.id]}"
                )
            where[entry.id] = f"{name} row {row}"
            rules[entry.id] = RuleInfo(
                rule_id=entry.id, family=family, severity=entry.severity,
                summary=entry.summary, action=entry.action, reference=entry.reference,
            )
    return rules


def _check_rule_ids(rules: Mapping[str, RuleInfo], required: Collection[str]) -> None:
    missing = sorted(set(required) - rules.keys())
    if missing:
        more = f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if missing[1:] else ""
        raise RuleTableError(
            f"{RULES_DIR}/*.yaml", "-", "id",
            f"no catalogue entry for rule id {missing[0]}{more}; "
            "every rule the engine can emit needs one",
        )
