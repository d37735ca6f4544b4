"""The pydantic models of `payers.yaml` (payer policies as effective-dated, cited data) and
`dx_regions.yaml` (the spinal regions of facet procedures and diagnoses).

Validated once at load like every other rule-table file (`service.ruletable.file_models`):
frozen, unknown keys forbidden.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from service.ruletable.file_models import (
    FROZEN,
    Codes,
    CodeSpec,
    DxCode,
    MaybeDate,
    Modifier,
    Name,
    PayerId,
    PolicyId,
    Text,
    Url,
)

__all__ = [
    "LevelLimitPolicy",
    "Modifier51Policy",
    "ModifierExpectedPolicy",
    "NoncoveredPolicy",
    "PayerEntry",
    "PayersFile",
    "Policy",
    "RegionsFile",
    "SamePolicy",
]


class _Policy(BaseModel):
    model_config = FROZEN

    id: PolicyId
    title: Text
    effective_from: MaybeDate
    """Required key: write `null` when no start date is known (then it applies to every date)."""
    effective_to: MaybeDate
    reference: Text
    url: Url


class NoncoveredPolicy(_Policy):
    kind: Literal["noncovered"]
    codes: Codes


class LevelGroup(BaseModel):
    model_config = FROZEN

    codes: Codes
    region: Name
    count: Literal["one", "per_unit"]
    """`one`: the code is one level whatever its units; `per_unit`: each unit is a level."""


class LevelLimitPolicy(_Policy):
    kind: Literal["level_limit"]
    max_levels: Annotated[int, Field(ge=1, strict=True)]
    per: Literal["region", "session"] = "region"
    """`session`: levels of every region on one date count together (Aetna CPB 0016)."""
    levels: Annotated[tuple[LevelGroup, ...], Field(min_length=1)]


class ModifierExpectedPolicy(_Policy):
    kind: Literal["modifier_expected"]
    modifier: Modifier
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
    model_config = FROZEN

    aoc: Annotated[bool, Field(strict=True)]
    mue: Annotated[bool, Field(strict=True)]
    mpfs_status: Annotated[bool, Field(strict=True)] = False
    """Medicare's fee-schedule status decides payability (fee_status.yaml); MEDICARE only."""
    global_surgery: Annotated[bool, Field(strict=True)] = False
    """Medicare's global surgery rules (major = 090 global days) judge modifier 57."""


class PayerEntry(BaseModel):
    model_config = FROZEN

    name: Text
    national_edits: NationalEdits
    bilateral_format: Literal["modifier_50", "rt_lt"]
    bilateral_reference: Text
    modifier_50_follows_cpt: tuple[CodeSpec, ...] = ()
    """Bilateral-indicator-2 codes for which the payer follows CPT and accepts modifier 50."""
    policies: tuple[Policy, ...] = ()


class PayersFile(BaseModel):
    model_config = FROZEN

    curated_version: Annotated[int, Field(ge=1, strict=True)]
    national: PayerEntry
    payers: dict[PayerId, PayerEntry]


class Region(BaseModel):
    model_config = FROZEN

    name: Name
    label: Text
    reference: Text


class ProcedureRegion(BaseModel):
    model_config = FROZEN

    region: Name
    codes: Codes
    reference: Text


class DiagnosisRegion(BaseModel):
    model_config = FROZEN

    region: Name
    codes: Annotated[tuple[DxCode, ...], Field(min_length=1)]
    reference: Text


class RegionsFile(BaseModel):
    model_config = FROZEN

    curated_version: Annotated[int, Field(ge=1, strict=True)]
    regions: Annotated[tuple[Region, ...], Field(min_length=1)]
    procedures: Annotated[tuple[ProcedureRegion, ...], Field(min_length=1)]
    diagnoses: Annotated[tuple[DiagnosisRegion, ...], Field(min_length=1)]
