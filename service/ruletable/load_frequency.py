"""Validates and compiles `frequency_limits.yaml`: the history family's frequency limits.

Every limit is effective-dated payer data with its reference; a problem raises `RuleTableError`
naming the file, the limit's row and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from service.ruletable.codes import expand_code_spec
from service.ruletable.compiled.frequency import FrequencyLimit, FrequencyLimits
from service.ruletable.file_models import (
    FROZEN,
    Codes,
    MaybeDate,
    Modifier,
    PolicyId,
    Text,
    Url,
)
from service.ruletable.files import RuleTableError, validated, yaml_data

__all__ = ["FREQUENCY_FILE", "load_frequency"]

FREQUENCY_FILE = "frequency_limits.yaml"


class _RegionCodes(BaseModel):
    model_config = FROZEN
    region: Text
    codes: Codes


class _Limit(BaseModel):
    model_config = FROZEN
    id: PolicyId
    payer: Annotated[str, Field(min_length=1)]
    title: Text
    max_sessions: Annotated[int, Field(ge=1, strict=True)]
    window_days: Annotated[int, Field(ge=1, le=3660, strict=True)]
    regions: Annotated[tuple[_RegionCodes, ...], Field(min_length=1)]
    count: Literal["together", "apart"]
    diagnostic_modifier: Modifier
    count_source: Text
    effective_from: MaybeDate
    effective_to: MaybeDate
    reference: Text
    url: Url


class _File(BaseModel):
    model_config = FROZEN
    curated_version: Annotated[int, Field(ge=1, strict=True)]
    limits: tuple[_Limit, ...]


_ADAPTER = TypeAdapter(_File)


def load_frequency(files: Mapping[str, bytes]) -> tuple[FrequencyLimits, int] | None:
    """The limits by payer and the file's curated version; None when the table has no file."""
    if FREQUENCY_FILE not in files:
        return None
    data = validated(FREQUENCY_FILE, _ADAPTER, yaml_data(files, FREQUENCY_FILE), "mapping")
    by_payer: dict[str, list[FrequencyLimit]] = {}
    seen: set[str] = set()
    for row, limit in enumerate(data.limits, start=1):
        if limit.id in seen:
            raise RuleTableError(FREQUENCY_FILE, row, "limits.id", f"{limit.id} is listed twice")
        seen.add(limit.id)
        end, start = limit.effective_to, limit.effective_from
        if start is not None and end is not None and end < start:
            raise RuleTableError(
                FREQUENCY_FILE, row, "limits.effective_to", f"{end} is before {start}"
            )
        regions: dict[str, str] = {}
        for group in limit.regions:
            for spec in group.codes:
                try:
                    codes = expand_code_spec(spec)
                except ValueError as exc:
                    raise RuleTableError(
                        FREQUENCY_FILE, row, "limits.regions.codes", str(exc)
                    ) from None
                for code in codes:
                    if code in regions:
                        raise RuleTableError(
                            FREQUENCY_FILE, row, "limits.regions.codes",
                            f"code {code} is in two regions",
                        )
                    regions[code] = group.region
        by_payer.setdefault(limit.payer, []).append(
            FrequencyLimit(
                policy_id=limit.id, title=limit.title, payer=limit.payer,
                max_sessions=limit.max_sessions, window_days=limit.window_days,
                regions=regions, apart=limit.count == "apart",
                diagnostic_modifier=limit.diagnostic_modifier,
                effective_from=start, effective_to=end,
                reference=limit.reference, url=limit.url,
            )
        )
    return {payer: tuple(group) for payer, group in by_payer.items()}, data.curated_version
