"""The HTTP API's own response models; claims and verdicts are the event models themselves."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.models.events import Finding, Severity, VerdictEvent

__all__ = [
    "BatchItem",
    "BatchResult",
    "ErrorBody",
    "ErrorCode",
    "IntakeError",
    "ProvenanceEntry",
    "RuleEntry",
    "RuleTableInfo",
    "Sample",
    "X12Result",
]

_OUT = ConfigDict(extra="forbid", frozen=True)

ErrorCode = Literal[
    "not-json",
    "not-an-object",
    "no-claim-id",
    "claim-malformed",
    "body-too-large",
    "too-many-claims",
    "body-timeout",
    "judge-timeout",
    "x12-not-installed",
]


class ErrorBody(BaseModel):
    """Why a request or one claim of a batch was not judged (or was judged malformed)."""

    model_config = _OUT
    error: ErrorCode
    detail: str
    """A short hint naming fields and limits, never a claim's values."""
    problems: tuple[Finding, ...] = Field(
        default=(),
        description="claim-malformed: the CLAIM_MALFORMED findings, one per field (and line) "
        "that breaks the schema, exactly as the flagged verdict carries them.",
    )
    verdict: VerdictEvent | None = Field(
        default=None,
        description="claim-malformed: the flagged verdict the Kafka path publishes for it.",
    )


class BatchItem(BaseModel):
    """One claim of a batch: its verdict, or why it could not be read."""

    model_config = _OUT
    index: int = Field(
        description="Where the claim sits in the request: its line number (JSON Lines) or its "
        "position from 1 (JSON array)."
    )
    status: Literal["accepted", "flagged", "malformed", "unreadable"]
    claim_id: str | None
    verdict: VerdictEvent | None = None
    """accepted, flagged, malformed: the verdict the Kafka path publishes for this claim."""
    error: ErrorBody | None = None
    """malformed, unreadable: what is wrong."""


class BatchResult(BaseModel):
    model_config = _OUT
    rule_table_version: str
    counts: dict[str, int] = Field(
        description="Claims by status: accepted, flagged, malformed, unreadable."
    )
    results: tuple[BatchItem, ...]


class IntakeError(BaseModel):
    """One problem the 837P intake reported (as `claims-validator ingest` does on stderr),
    without the file name and never with an element's value."""

    model_config = _OUT
    error: str = Field(
        description="x12-error, x12-unreadable, claim-rejected or claim-unmappable."
    )
    segment: int = Field(description="Position of the segment in the text, from 1.")
    segment_id: str | None = None
    claim_id: str | None = Field(
        default=None, description="claim-rejected, claim-unmappable: the CLM01 not judged."
    )
    element: str | None = Field(default=None, description="e.g. DTP03, for element errors.")
    message: str


class X12Result(BaseModel):
    """An 837P judged: one result per claim the intake turned into an event, and every
    problem it reported (claims it rejected are named there, so none goes missing)."""

    model_config = _OUT
    rule_table_version: str
    counts: dict[str, int] = Field(
        description="Claims by status: accepted, flagged, malformed, unreadable, and "
        "rejected (by the intake)."
    )
    results: tuple[BatchItem, ...] = Field(
        description="index: the position of the claim's CLM segment in the text."
    )
    intake_errors: tuple[IntakeError, ...]


class RuleEntry(BaseModel):
    """One rule of the catalogue, as every finding of that rule cites it."""

    model_config = _OUT
    rule_id: str
    family: str
    severity: Severity
    meaning: str
    what_to_do: str
    source: str


class ProvenanceEntry(BaseModel):
    model_config = _OUT
    table: str
    source_file: str
    release: str
    source_sha256: str
    rows: int


class RuleTableInfo(BaseModel):
    """The rule table being applied: the version each verdict names, and where its data is from."""

    model_config = _OUT
    version: str
    digest: str = Field(description="sha256 over the table's data: equal digests judge alike.")
    rules: int = Field(description="How many rules the catalogue has.")
    provenance: tuple[ProvenanceEntry, ...]


class Sample(BaseModel):
    """A sample claim.submitted event the what-if page can start from (no real patient)."""

    model_config = _OUT
    claim_id: str
    label: str
    event: dict[str, object]
