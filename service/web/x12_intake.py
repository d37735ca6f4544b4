"""An 837P request body through the intake `claims-validator ingest` uses, without HTTP.

The text is read by `service.intake` in memory (no file, no subprocess): its claims become the
same claim.submitted events the command writes, and its problems the same error objects, less
the file name. `x12_result` puts the verdicts of those events next to the problems, so a claim
the intake rejected is named in the answer rather than missing from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from service.intake.ingest import text_results
from service.intake.x12_claims import Emitted, Problem
from service.intake.x12_read import MissingExtra, require_pyx12
from service.web.judging import Judged, batch_item
from service.web.models import ErrorBody, IntakeError, X12Result

__all__ = ["REJECTED", "intake_x12", "not_installed", "x12_result"]

SOURCE: Final = "request body"
REJECTED: Final = frozenset({"claim-rejected", "claim-unmappable"})
"""Intake errors that stand for a claim not turned into an event."""


def not_installed() -> ErrorBody | None:
    """Why 837P cannot be read here (pyx12, the `x12` extra, is missing), or None."""
    try:
        require_pyx12()
    except MissingExtra as exc:
        return ErrorBody(error="x12-not-installed", detail=str(exc))
    return None


def intake_x12(raw: bytes) -> tuple[list[Emitted], list[IntakeError]]:
    """The events and the problems of one 837P text, in the order the intake gives them.

    X12 is ASCII; other bytes become U+FFFD, as when the command reads a file."""
    text = raw.decode("ascii", errors="replace")
    emitted: list[Emitted] = []
    problems: list[IntakeError] = []
    for result in text_results(text, SOURCE, {}):
        if isinstance(result, Problem):
            problems.append(_intake_error(result))
        else:
            emitted.append(result)
    return emitted, problems


def _intake_error(problem: Problem) -> IntakeError:
    fields = problem.fields
    return IntakeError(
        error=str(fields["error"]),
        segment=int(fields.get("segment") or 0),
        segment_id=fields.get("segment_id"),
        claim_id=fields.get("claim_id"),
        element=fields.get("element"),
        message=str(fields.get("message") or fields.get("detail") or ""),
    )


def x12_result(
    emitted: Sequence[Emitted],
    judged: Sequence[Judged],
    problems: Sequence[IntakeError],
    version: str,
) -> X12Result:
    items = tuple(
        batch_item(e.position, j) for e, j in zip(emitted, judged, strict=True)
    )
    counts = dict.fromkeys(("accepted", "flagged", "malformed", "unreadable"), 0)
    for item in items:
        counts[item.status] += 1
    counts["rejected"] = sum(1 for p in problems if p.error in REJECTED)
    return X12Result(
        rule_table_version=version, counts=counts, results=items, intake_errors=tuple(problems)
    )
