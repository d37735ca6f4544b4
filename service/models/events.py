"""Event contract, version 1: `claim.submitted` in, `claim.accepted` / `claim.flagged` out.

Inbound models ignore unknown fields (tolerant reader) and validate only the *shape* of a claim:
content rules (code shapes, modifiers, place of service) are findings from the engine, so a
biller sees every problem at once instead of the first schema error. The shape includes size
limits (`service.limits`) and types as strict as the published schema: `service.decode`
validates in strict mode, so a number is a JSON number and a date an ISO string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.dataclasses import dataclass as validated_dataclass

from service.limits import DEFAULT_LIMITS, MAX_INTEGER

__all__ = [
    "Claim",
    "ClaimSubmitted",
    "Finding",
    "Patient",
    "RenderingProvider",
    "ServiceLine",
    "Severity",
    "VerdictEvent",
]

Severity = Literal["error", "warning"]

# The constraints below are the default `Limits`, so the published schema states them;
# `service.decode` enforces the configured limits (the same ones unless an operator changes them).
_TEXT = DEFAULT_LIMITS.max_string_length
Text = Annotated[str, StringConstraints(max_length=_TEXT)]
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=_TEXT, strip_whitespace=True)]
Int32 = Annotated[int, Field(strict=True, ge=-MAX_INTEGER - 1, le=MAX_INTEGER)]
"""Integers are JSON integers only (no booleans, floats or strings), within 32 bits."""

_INBOUND = ConfigDict(extra="ignore", frozen=True)
# The claim and its parts are slotted, frozen pydantic dataclasses, not models: the engine reads
# their attributes on every rule, and a model's attribute goes through its `__getattr__` hook.
_PART = ConfigDict(extra="ignore")
_OUTBOUND = ConfigDict(extra="forbid", frozen=True)

MAX_SERVICE_LINES = DEFAULT_LIMITS.max_service_lines
"""An 837P claim carries at most 50 service lines (loop 2400 repeat)."""


@validated_dataclass(frozen=True, slots=True, kw_only=True, config=_PART)
class Patient:
    """Protected health information: never logged, never echoed in a verdict."""

    # Left out of the repr too, should a traceback or a debugger print the claim.
    member_id: NonEmpty = field(repr=False)
    birth_date: date = field(repr=False)


@validated_dataclass(frozen=True, slots=True, kw_only=True, config=_PART)
class RenderingProvider:
    npi: NonEmpty
    taxonomy_code: Text | None = None


@validated_dataclass(frozen=True, slots=True, kw_only=True, config=_PART)
class ServiceLine:
    line_number: Annotated[int, Field(strict=True, ge=1, le=MAX_SERVICE_LINES)]
    procedure_code: NonEmpty
    modifiers: Annotated[tuple[Text, ...], Field(max_length=DEFAULT_LIMITS.max_codes_per_line)] = ()
    units: Annotated[int, Field(strict=True, ge=1, le=MAX_INTEGER)]
    place_of_service: NonEmpty
    service_date: date
    diagnosis_pointers: Annotated[
        tuple[Int32, ...], Field(max_length=DEFAULT_LIMITS.max_codes_per_line)
    ] = ()
    charge_amount: Annotated[
        Decimal,
        Field(
            ge=0,
            description="An amount of at least 0: a JSON number, or a decimal string such as "
            '"425.00" (exact, as money should be). Not a boolean.',
        ),
    ]
    rendering_provider_npi: Text | None = None
    """Overrides the claim's rendering provider for this line when present."""


@validated_dataclass(frozen=True, slots=True, kw_only=True, config=_PART)
class Claim:
    claim_id: NonEmpty
    payer_id: NonEmpty
    patient: Patient
    billing_provider_npi: NonEmpty
    rendering_provider: RenderingProvider
    diagnosis_codes: Annotated[
        tuple[Text, ...], Field(max_length=DEFAULT_LIMITS.max_diagnosis_codes)
    ] = ()
    service_lines: Annotated[
        tuple[ServiceLine, ...], Field(min_length=1, max_length=MAX_SERVICE_LINES)
    ]
    """pydantic-core checks a list's length only after validating every item, so
    `service.decode` counts the raw lists first (bounded work) and words a count problem itself."""

    @model_validator(mode="after")
    def _line_numbers_unique(self) -> Claim:
        numbers = [line.line_number for line in self.service_lines]
        if len(set(numbers)) != len(numbers):
            repeated = next(n for i, n in enumerate(numbers) if n in numbers[:i])
            raise ValueError(f"line_number {repeated} is repeated")
        return self


class ClaimSubmitted(BaseModel):
    """The inbound event; Kafka key = claim_id."""

    model_config = _INBOUND
    event_id: NonEmpty
    event_type: Literal["claim.submitted"]
    schema_version: Literal[1]
    occurred_at: datetime
    claim: Claim


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which costs more
# than building the rest of most findings; nothing changes a finding once the engine returns it.
@dataclass(slots=True)
class Finding:
    """One machine-readable problem: which rule, how bad, where, what to do, on what authority.

    A slotted dataclass, not a model: the engine builds one per problem on the hot path, at a
    third of a model's cost; pydantic still validates and serialises it inside `VerdictEvent`.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    rule_id: str
    severity: Severity
    line_number: int | None
    procedure_code: str | None
    message: str
    reference: str


class VerdictEvent(BaseModel):
    """The outbound event, published to the accepted or the flagged topic; key = claim_id."""

    model_config = _OUTBOUND
    event_id: str
    """Deterministic: the same input event under the same rule table gives the same id."""
    event_type: Literal["claim.accepted", "claim.flagged"]
    schema_version: Literal[1] = 1
    occurred_at: datetime
    causation_id: str | None
    """The input event's event_id; null only when the input had none (a malformed event)."""
    claim_id: str
    verdict: Literal["accepted", "flagged"]
    findings: tuple[Finding, ...]
    rule_table_version: str
