"""The files of the code-set data and the models of each: ICD-10-CM editions, Medicare payability
by fee-schedule status, and the add-on primaries beyond the CMS file.

Like `service.ruletable.file_models` (whose field types these share), every model is frozen and
forbids unknown fields, so a misspelt key stops the load naming the file and field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from service.ruletable.file_models import (
    FROZEN,
    CodeSpec,
    Hcpcs,
    IsoDate,
    Modifier,
    OptionalDate,
    PayerId,
    Text,
)

__all__ = [
    "ADDON_PRIMARIES_FILE",
    "FEE_STATUS_FILE",
    "ICD_DATA_FILE",
    "ICD_SOURCE_FILE",
    "AddonPrimariesFile",
    "FeeStatusEntry",
    "FeeStatusFile",
    "IcdEditionEntry",
    "IcdSource",
]

ICD_DATA_FILE = "icd10cm.txt.gz"
"""Every ICD-10-CM code of the shipped editions, `CODE FLAGS` per line (see importers.icd10cm)."""
ICD_SOURCE_FILE = "icd10cm_source.json"
FEE_STATUS_FILE = "fee_status.yaml"
ADDON_PRIMARIES_FILE = "addon_primaries.yaml"

# -- Medicare payability by fee-schedule status ---------------------------------------------------


class FeeStatusEntry(BaseModel):
    model_config = FROZEN

    status: Annotated[str, Field(pattern=r"^[A-Z]$")]
    meaning: Text
    exempt_modifiers: tuple[Modifier, ...] = ()
    exempt_reason: str = ""


class FeeReplacement(BaseModel):
    model_config = FROZEN

    code: Hcpcs
    use: Hcpcs
    reference: Text


class FeeReported(BaseModel):
    model_config = FROZEN

    code: Hcpcs
    reference: Text


class FeeStatusFile(BaseModel):
    """`fee_status.yaml`: the statuses Medicare does not pay, codes it replaces, and codes of
    such a status that Medicare asks to be reported anyway (at no charge)."""

    model_config = FROZEN

    curated_version: Annotated[int, Field(ge=1, strict=True)]
    reference: Text
    statuses: Annotated[tuple[FeeStatusEntry, ...], Field(min_length=1)]
    replacements: tuple[FeeReplacement, ...] = ()
    reported: tuple[FeeReported, ...] = ()


# -- add-on primaries beyond the AOC file ---------------------------------------------------------


class NotPrimaryKind(BaseModel):
    model_config = FROZEN

    kind: Text
    ranges: Annotated[tuple[CodeSpec, ...], Field(min_length=1)]
    reference: Text


class OtherPractitioner(BaseModel):
    model_config = FROZEN

    add_on: Hcpcs
    primaries: Annotated[tuple[Hcpcs, ...], Field(min_length=1)]
    reference: Text



class PayerPrimaries(BaseModel):
    model_config = FROZEN

    add_on: Hcpcs
    primaries: Annotated[tuple[Hcpcs, ...], Field(min_length=1)]
    payers: Annotated[tuple[PayerId, ...], Field(min_length=1)]
    effective_from: IsoDate
    effective_to: OptionalDate
    reference: Text


class AddonPrimariesFile(BaseModel):
    """`addon_primaries.yaml`: what is no plausible primary, and the same-group exception."""

    model_config = FROZEN

    curated_version: Annotated[int, Field(ge=1, strict=True)]
    not_primaries: tuple[NotPrimaryKind, ...]
    other_practitioner: tuple[OtherPractitioner, ...] = ()
    payer_primaries: tuple[PayerPrimaries, ...] = ()


# -- ICD-10-CM editions -------------------------------------------------------------------------


class IcdEditionEntry(BaseModel):
    """One shipped ICD-10-CM edition in `icd10cm_source.json`: when in force, where from."""

    model_config = FROZEN

    edition: Annotated[str, Field(pattern=r"^[0-9]{4}[a-z]{3}$")]
    label: Text
    effective_from: IsoDate
    effective_to: IsoDate
    note: Text
    package: Text
    package_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    source_file: Text
    source_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    codes: Annotated[int, Field(ge=1, strict=True)]
    billable: Annotated[int, Field(ge=1, strict=True)]


class IcdSource(BaseModel):
    """`icd10cm_source.json`: the editions of `icd10cm.txt.gz`, oldest first."""

    model_config = FROZEN

    data_file: Literal["icd10cm.txt.gz"]
    data_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    codes: Annotated[int, Field(ge=1, strict=True)]
    reference: Text
    editions: Annotated[tuple[IcdEditionEntry, ...], Field(min_length=1)]
