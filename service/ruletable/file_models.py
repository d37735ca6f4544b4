"""The files of a rule-table directory and the pydantic model of each, validated once at load.

Every data file is read as text (CSV cells, YAML scalars, JSON) and checked by these models
before it is compiled into `service.ruletable.compiled`, so a broken table fails at start-up
with a message naming the file, row and field instead of producing wrong verdicts later. The
models are frozen and forbid unknown fields: a misspelt column or key is an error, not ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from service.ruletable.codes import hcpcs, optional_date, parse_iso_date

__all__ = [
    "AOC_COLUMNS",
    "AOC_FILE",
    "FEE_COLUMNS",
    "FEE_FILE",
    "FROZEN",
    "GLOBAL_DAYS",
    "MANIFEST_FILE",
    "MUE_COLUMNS",
    "MUE_FILE",
    "MUE_RELEASE_RE",
    "MUE_SOURCE_FILE",
    "PAYERS_FILE",
    "POS_ALLOWED_FILE",
    "POS_COLUMNS",
    "POS_FILE",
    "REGIONS_FILE",
    "RULES_DIR",
    "TABLE_FILES",
    "AocRow",
    "CodeSpec",
    "Codes",
    "DxCode",
    "FeeRow",
    "Hcpcs",
    "IsoDate",
    "Manifest",
    "ManifestTable",
    "MaybeDate",
    "Modifier",
    "MueRow",
    "MueSource",
    "Name",
    "OptionalDate",
    "PayerId",
    "PolicyId",
    "PosAllowedFile",
    "PosCode",
    "PosRow",
    "RuleRow",
    "Text",
    "Url",
    "compose_version",
]

# -- the files --------------------------------------------------------------------------------

AOC_FILE = "aoc.csv"
FEE_FILE = "fee_indicators.csv"
POS_FILE = "place_of_service.csv"
POS_ALLOWED_FILE = "pos_allowed.yaml"
MANIFEST_FILE = "manifest.json"
MUE_FILE = "mue.csv"
MUE_SOURCE_FILE = "mue_source.json"
PAYERS_FILE = "payers.yaml"
REGIONS_FILE = "dx_regions.yaml"
RULES_DIR = "rules"
"""`rules/<family>.yaml`: the rule catalogue, one file per rule family."""
TABLE_FILES: Mapping[str, str] = {
    "aoc": AOC_FILE, "fee_indicators": FEE_FILE, "place_of_service": POS_FILE
}
"""Manifest table name -> the file derived from an official CMS release."""

AOC_COLUMNS = (
    "add_on_code",
    "edit_type",
    "aoc_deleted",
    "primary_code",
    "primary_deleted",
    "effective",
    "deleted",
    "note",
)
FEE_COLUMNS = ("code", "status", "global_days", "mult_proc", "bilateral", "pctc")
POS_COLUMNS = ("code", "name", "medicare_pfs_rate")
MUE_COLUMNS = ("code", "mue", "mai", "rationale")

GLOBAL_DAYS = frozenset({"000", "010", "090", "MMM", "XXX", "YYY", "ZZZ"})
MUE_RELEASE_RE = re.compile(r"^[a-z0-9]+$")

# -- field types ------------------------------------------------------------------------------

FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)
"""The model config of every data file (the other file-model modules share it)."""


def _policy_date(value: object) -> date | None:
    return None if value is None else parse_iso_date(value)


Hcpcs = Annotated[str, AfterValidator(hcpcs)]
IsoDate = Annotated[date, BeforeValidator(parse_iso_date)]
OptionalDate = Annotated[date | None, BeforeValidator(optional_date)]
MaybeDate = Annotated[date | None, BeforeValidator(_policy_date)]
"""A payer-policy date: null (no bound) or an ISO date; unlike a CSV cell, never empty."""
Digit = Annotated[str, Field(pattern=r"^[0-9]$")]
Text = Annotated[str, Field(min_length=1)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
PosCode = Annotated[str, Field(pattern=r"^[0-9]{2}$")]
CodeSpec = Annotated[str, Field(pattern=r"^[0-9A-Z]{5}(?:-[0-9A-Z]{5})?$")]
"""A code or a range of codes (`64490-64495`), expanded by `expand_code_spec`."""
Codes = Annotated[tuple[CodeSpec, ...], Field(min_length=1)]
DxCode = Annotated[str, Field(pattern=r"^[A-Z][0-9A-Z]{2}(?:\.[0-9A-Z]{1,4})?$")]
Modifier = Annotated[str, Field(pattern=r"^[0-9A-Z]{2}$")]
PayerId = Annotated[str, Field(pattern=r"^[A-Z0-9_]+$")]
PolicyId = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]*$")]
"""The id of a payer policy or frequency limit, as findings cite it."""
Url = Annotated[str, Field(pattern=r"^https?://\S+$")]

# -- CMS-derived tables and the curated places of service -------------------------------------


class AocRow(BaseModel):
    """One row of `aoc.csv`: an (add-on, primary) edit of the CMS NCCI AOC file."""

    model_config = FROZEN

    add_on_code: Hcpcs
    edit_type: Literal["1", "2", "3"]
    aoc_deleted: OptionalDate
    primary_code: Annotated[str, Field(pattern=r"^(?:[0-9A-Z]{5})$")]
    """A primary code, or `CCCCC` for contractor-defined primaries."""
    primary_deleted: OptionalDate
    effective: IsoDate
    deleted: OptionalDate
    note: str


class FeeRow(BaseModel):
    """One row of `fee_indicators.csv`: MPFS payment-policy indicators, no description text."""

    model_config = FROZEN

    code: Hcpcs
    status: Annotated[str, Field(pattern=r"^[A-Z]$")]
    global_days: Annotated[str, AfterValidator(lambda v: _one_of(v, GLOBAL_DAYS))]
    mult_proc: Digit
    bilateral: Digit
    pctc: Digit


def _one_of(value: str, allowed: frozenset[str]) -> str:
    if value not in allowed:
        raise ValueError(f"expected one of {', '.join(sorted(allowed))}, got {value!r}")
    return value


class PosRow(BaseModel):
    """One row of `place_of_service.csv`: the CMS place-of-service code set."""

    model_config = FROZEN

    code: PosCode
    name: Text
    medicare_pfs_rate: Literal["facility", "non-facility", ""]


class RuleRow(BaseModel):
    """One entry of a rule catalogue file `rules/<family>.yaml`."""

    model_config = FROZEN

    id: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
    severity: Literal["error", "warning"]
    summary: Text
    action: Text
    reference: Text


class ExcludedPlaces(BaseModel):
    """Places deliberately left out of a set, and why (documentation the loader also checks)."""

    model_config = FROZEN

    places: Annotated[tuple[PosCode, ...], Field(min_length=1)]
    reason: Text
    rule: str = ""
    """The cited rule that forbids these places (POS_NOT_ALLOWED); empty: a heuristic."""


class PlaceSet(BaseModel):
    """A named set of allowed places of service, with the reasoning and sources behind it."""

    model_config = FROZEN

    name: Name
    places: Annotated[tuple[PosCode, ...], Field(min_length=1)]
    reason: Text
    reference: Text
    excluded: tuple[ExcludedPlaces, ...] = ()


class ProcedureGroup(BaseModel):
    """Procedure codes (single codes or ranges) restricted to one named place set."""

    model_config = FROZEN

    set: Name
    codes: Annotated[tuple[CodeSpec, ...], Field(min_length=1)]
    note: str = ""


class PosAllowedFile(BaseModel):
    """`pos_allowed.yaml`: curated allowed places of service per procedure code."""

    model_config = FROZEN

    curated_version: Annotated[int, Field(ge=1, strict=True)]
    place_sets: Annotated[tuple[PlaceSet, ...], Field(min_length=1)]
    procedures: Annotated[tuple[ProcedureGroup, ...], Field(min_length=1)]


class ManifestTable(BaseModel):
    """Provenance of one derived table in `manifest.json`."""

    model_config = FROZEN

    file: Annotated[str, Field(pattern=r"^[a-z_]+\.csv$")]
    source_file: Text
    release: Text
    source_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    rows: Annotated[int, Field(ge=0, strict=True)]


class Manifest(BaseModel):
    """`manifest.json`: where each derived table came from, and the composed table version."""

    model_config = FROZEN

    version: Text
    curated_version: Annotated[int, Field(ge=1, strict=True)]
    tables: dict[str, ManifestTable]
    """Table name (`aoc`, `fee_indicators`, `place_of_service`) -> provenance."""


def compose_version(tables: Mapping[str, ManifestTable], curated_version: int) -> str:
    """`aoc-2026q2.pfs-2025jan.pos-2024.curated-1`: every source release plus the curated data."""

    def label(name: str) -> str:
        return tables[name].release.lower().replace("-", "")

    return (
        f"aoc-{label('aoc')}.pfs-{label('fee_indicators')}.pos-{label('place_of_service')}"
        f".curated-{curated_version}"
    )


# -- MUE ----------------------------------------------------------------------------------------


class MueRow(BaseModel):
    """One row of `mue.csv`: the practitioner MUE of one HCPCS/CPT code."""

    model_config = FROZEN

    code: Annotated[str, Field(pattern=r"^[0-9A-Z]{5}$")]
    mue: Annotated[int, Field(ge=0, le=99999)]
    """Most units one provider reports for one patient on one date of service (F-MUE-1)."""
    mai: Literal["1", "2", "3"]
    """MUE adjudication indicator: 1 per line, 2 per date (policy), 3 per date (clinical)."""
    rationale: Annotated[str, Field(min_length=1)]


class MueSource(BaseModel):
    """`mue_source.json`: where the rows of `mue.csv` come from."""

    model_config = FROZEN

    source_file: Annotated[str, Field(min_length=1)]
    release: Annotated[str, Field(pattern=MUE_RELEASE_RE.pattern)]
    """Short label for the table version string, e.g. `2026q2`, or `descriptor`."""
    source_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None
    rows: Annotated[int, Field(ge=0, strict=True)]
    reference: Annotated[str, Field(min_length=1)]
    """What each UNITS_EXCEED_LIMIT finding says the limit rests on."""
