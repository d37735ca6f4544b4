"""The pydantic model of `visits.yaml`: E/M code families and the settings their codes exclude.

Validated once at load like every other rule-table file: frozen, unknown keys forbidden.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["VISITS_FILE", "CodeFamily", "VisitSetting", "VisitsFile"]

VISITS_FILE = "visits.yaml"

_FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)
_Text = Annotated[str, Field(min_length=1)]
_CodeSpec = Annotated[str, Field(pattern=r"^[0-9A-Z]{5}(?:-[0-9A-Z]{5})?$")]
_Codes = Annotated[tuple[_CodeSpec, ...], Field(min_length=1)]
_Pos = Annotated[str, Field(pattern=r"^[0-9]{2}$")]


class CodeFamily(BaseModel):
    """Codes (single or ranges) and the source that names them."""

    model_config = _FROZEN

    codes: _Codes
    reference: _Text


class VisitSetting(BaseModel):
    """A visit family whose definition names its setting, and the places that contradict it."""

    model_config = _FROZEN

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    codes: _Codes
    label: _Text
    forbidden: Annotated[tuple[_Pos, ...], Field(min_length=1)]
    reason: _Text
    reference: _Text


class VisitsFile(BaseModel):
    model_config = _FROZEN

    curated_version: Annotated[int, Field(ge=1, strict=True)]
    em_modifier_codes: CodeFamily
    distinct_modifier_excluded: CodeFamily
    settings: tuple[VisitSetting, ...] = ()
