"""Row and file models of the shipped rule-table data, validated once at load.

Every data file is read as text (CSV cells, YAML scalars) and checked here before it is compiled
into the lookups of `service.ruletable.compiled`, so a broken table fails at start-up with a
message naming the file, row and field instead of producing wrong verdicts later. The models are
frozen and forbid unknown fields: a misspelt column or key is an error, not silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "AOC_COLUMNS",
    "FEE_COLUMNS",
    "GLOBAL_DAYS",
    "POS_COLUMNS",
    "AocRow",
    "CodeSpec",
    "ExcludedPlaces",
    "FeeRow",
    "Manifest",
    "ManifestTable",
    "PlaceSet",
    "PosAllowedFile",
    "PosRow",
    "ProcedureGroup",
    "RuleRow",
    "compose_version",
    "expand_code_spec",
    "parse_iso_date",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

HCPCS_RE = re.compile(r"[0-9A-Z]{5}")
_ISO_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_RANGE_RE = re.compile(r"([0-9A-Z]{5})-([0-9A-Z]{5})")
_MAX_RANGE = 200

GLOBAL_DAYS = frozenset({"000", "010", "090", "MMM", "XXX", "YYY", "ZZZ"})

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


def parse_iso_date(value: object) -> date:
    """An ISO `YYYY-MM-DD` date and nothing else (no timestamps, no Julian digits)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_RE.fullmatch(value):
        raise ValueError(f"expected an ISO date YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not a calendar date: {value!r}") from exc


def _optional_date(value: object) -> date | None:
    if value is None or value == "":
        return None
    return parse_iso_date(value)


def _hcpcs(value: str) -> str:
    if not HCPCS_RE.fullmatch(value):
        raise ValueError(f"expected a 5-character HCPCS/CPT code (0-9, A-Z), got {value!r}")
    return value


Hcpcs = Annotated[str, AfterValidator(_hcpcs)]
IsoDate = Annotated[date, BeforeValidator(parse_iso_date)]
OptionalDate = Annotated[date | None, BeforeValidator(_optional_date)]
Digit = Annotated[str, Field(pattern=r"^[0-9]$")]
Text = Annotated[str, Field(min_length=1)]
PosCode = Annotated[str, Field(pattern=r"^[0-9]{2}$")]


class AocRow(BaseModel):
    """One row of `aoc.csv`: an (add-on, primary) edit of the CMS NCCI AOC file."""

    model_config = _FROZEN

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

    model_config = _FROZEN

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

    model_config = _FROZEN

    code: PosCode
    name: Text
    medicare_pfs_rate: Literal["facility", "non-facility", ""]


class RuleRow(BaseModel):
    """One entry of a rule catalogue file `rules/<family>.yaml`."""

    model_config = _FROZEN

    id: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
    severity: Literal["error", "warning"]
    summary: Text
    action: Text
    reference: Text


CodeSpec = Annotated[str, Field(pattern=r"^[0-9A-Z]{5}(?:-[0-9A-Z]{5})?$")]


def expand_code_spec(spec: str) -> tuple[str, ...]:
    """`64490` -> (64490,); `64490-64495` or `0213T-0218T` -> every code of the range.

    A range runs over the digits of codes that share their letters in the same places
    (e.g. `0213T`-`0218T`); anything else, or more than 200 codes, is refused.
    """
    match = _RANGE_RE.fullmatch(spec)
    if match is None:
        return (_hcpcs(spec),)
    low, high = match.groups()
    shape_low = re.sub(r"[0-9]", "9", low)
    shape_high = re.sub(r"[0-9]", "9", high)
    if shape_low != shape_high:
        raise ValueError(f"range {spec!r}: both ends must have letters in the same places")
    letters = [(i, ch) for i, ch in enumerate(low) if not ch.isdigit()]
    if any(high[i] != ch for i, ch in letters):
        raise ValueError(f"range {spec!r}: both ends must share their letters")
    digits_low = int("".join(ch for ch in low if ch.isdigit()))
    digits_high = int("".join(ch for ch in high if ch.isdigit()))
    if digits_high < digits_low:
        raise ValueError(f"range {spec!r}: the end is before the start")
    if digits_high - digits_low >= _MAX_RANGE:
        raise ValueError(f"range {spec!r}: more than {_MAX_RANGE} codes")
    width = sum(ch.isdigit() for ch in low)
    codes: list[str] = []
    for number in range(digits_low, digits_high + 1):
        chars = iter(f"{number:0{width}d}")
        codes.append("".join(ch if not ch.isdigit() else next(chars) for ch in low))
    return tuple(codes)


class ExcludedPlaces(BaseModel):
    """Places deliberately left out of a set, and why (documentation the loader also checks)."""

    model_config = _FROZEN

    places: Annotated[tuple[PosCode, ...], Field(min_length=1)]
    reason: Text


class PlaceSet(BaseModel):
    """A named set of allowed places of service, with the reasoning and sources behind it."""

    model_config = _FROZEN

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    places: Annotated[tuple[PosCode, ...], Field(min_length=1)]
    reason: Text
    reference: Text
    excluded: tuple[ExcludedPlaces, ...] = ()


class ProcedureGroup(BaseModel):
    """Procedure codes (single codes or ranges) restricted to one named place set."""

    model_config = _FROZEN

    set: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    codes: Annotated[tuple[CodeSpec, ...], Field(min_length=1)]
    note: str = ""


class PosAllowedFile(BaseModel):
    """`pos_allowed.yaml`: curated allowed places of service per procedure code."""

    model_config = _FROZEN

    curated_version: Annotated[int, Field(ge=1, strict=True)]
    place_sets: Annotated[tuple[PlaceSet, ...], Field(min_length=1)]
    procedures: Annotated[tuple[ProcedureGroup, ...], Field(min_length=1)]


class ManifestTable(BaseModel):
    """Provenance of one derived table in `manifest.json`."""

    model_config = _FROZEN

    file: Annotated[str, Field(pattern=r"^[a-z_]+\.csv$")]
    source_file: Text
    release: Text
    source_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    rows: Annotated[int, Field(ge=0, strict=True)]


class Manifest(BaseModel):
    """`manifest.json`: where each derived table came from, and the composed table version."""

    model_config = _FROZEN

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
