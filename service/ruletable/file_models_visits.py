"""The pydantic model of `visits.yaml`: E/M code families and the settings their codes exclude.

Validated once at load like every other rule-table file: frozen, unknown keys forbidden.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from service.ruletable.file_models import FROZEN, Codes, Name, PosCode, Text

__all__ = ["VISITS_FILE", "CodeFamily", "VisitSetting", "VisitsFile"]

VISITS_FILE = "visits.yaml"


class CodeFamily(BaseModel):
    """Codes (single or ranges) and the source that names them."""

    model_config = FROZEN

    codes: Codes
    reference: Text


class VisitSetting(BaseModel):
    """A visit family whose definition names its setting, and the places that contradict it."""

    model_config = FROZEN

    name: Name
    codes: Codes
    label: Text
    forbidden: Annotated[tuple[PosCode, ...], Field(min_length=1)]
    reason: Text
    reference: Text


class VisitsFile(BaseModel):
    model_config = FROZEN

    curated_version: Annotated[int, Field(ge=1, strict=True)]
    em_modifier_codes: CodeFamily
    distinct_modifier_excluded: CodeFamily
    settings: tuple[VisitSetting, ...] = ()
