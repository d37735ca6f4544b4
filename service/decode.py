"""Turning raw event bytes into a claim, a malformed-claim report, or an unreadable-event reason.

The three outcomes match the three paths of the service: a readable claim is judged; an event that
names a claim_id but breaks the schema gets a flagged verdict with one CLAIM_MALFORMED finding per
problem; anything else (not JSON, not an object, no claim_id) is unreadable and goes to the
dead-letter topic. Messages name fields, never their values: values may be patient data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from service.models.events import MAX_SERVICE_LINES, ClaimSubmitted
from service.validation_errors import dotted_path, error_message

__all__ = ["Decoded", "Malformed", "Readable", "Unreadable", "decode", "field_path"]

Problem = tuple[str, str, int | None]


@dataclass(frozen=True, slots=True)
class Readable:
    event: ClaimSubmitted


@dataclass(frozen=True, slots=True)
class Malformed:
    claim_id: str
    event_id: str | None
    problems: tuple[Problem, ...]
    """(field path, what is wrong, service line number or None), in schema order."""
    raw_sha256: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    reason: str
    """A short code: `not-json`, `not-an-object`, `no-claim-id`."""
    detail: str


Decoded = Readable | Malformed | Unreadable

_LINES = ("claim", "service_lines")
_LINES_PATH = "claim.service_lines"
_COUNT_ERRORS = frozenset({"too_short", "too_long"})


def field_path(loc: tuple[int | str, ...]) -> str:
    """`('claim', 'service_lines', 1, 'units')` -> `claim.service_lines[1].units`."""
    return dotted_path(loc, "(event)")


def decode(raw: bytes | None) -> Decoded:
    """Classify one event value. Never raises."""
    if raw is None:
        return Unreadable("not-json", "the event has no value (tombstone)")
    try:
        return Readable(ClaimSubmitted.model_validate_json(raw))
    except ValidationError as exc:
        first_error = exc
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Unreadable("not-json", f"not valid JSON (at byte {exc.pos})")
    if not isinstance(obj, dict):
        kind = type(obj).__name__
        return Unreadable("not-an-object", f"the event is a JSON {kind}, not an object")
    claim = obj.get("claim")
    claim_id = claim.get("claim_id") if isinstance(claim, dict) else None
    if not isinstance(claim, dict) or not isinstance(claim_id, str) or not claim_id.strip():
        return Unreadable("no-claim-id", "the event has no claim.claim_id string")
    event_id = obj.get("event_id")
    problems = _problems(first_error, claim)
    return Malformed(
        claim_id=claim_id.strip(),
        event_id=event_id if isinstance(event_id, str) and event_id else None,
        problems=problems,
        raw_sha256=hashlib.sha256(raw).hexdigest(),
    )


def _problems(error: ValidationError, claim: dict[str, object]) -> tuple[Problem, ...]:
    """One problem per schema error, in schema order; a line count outside 1..50 is one problem.

    pydantic checks the count on the lines that validated, so a claim of 60 lines would get a
    problem per bad line, and a claim whose one line is bad would also read "at least 1 item".
    The count is taken from the raw list instead, and replaces every other problem of the lines.
    """
    lines = claim.get("service_lines")
    count = len(lines) if isinstance(lines, list) else None
    bad_count = count is not None and not 1 <= count <= MAX_SERVICE_LINES
    out: list[Problem] = []
    for err in error.errors(include_input=False):
        loc = err["loc"]
        if count is not None and loc[:2] == _LINES:
            if bad_count:
                if not any(path == _LINES_PATH for path, _, _ in out):
                    out.append((_LINES_PATH, _count_text(count), None))
                continue
            if len(loc) == 2 and err["type"] in _COUNT_ERRORS:
                continue  # 1..50 raw lines: the bad ones are reported each, not as a count
        out.append((field_path(loc), error_message(err), _line_number(lines, loc)))
    return tuple(out)


def _count_text(count: int) -> str:
    return f"a claim has 1 to {MAX_SERVICE_LINES} service lines, not {count}"


def _line_number(lines: object, loc: tuple[int | str, ...]) -> int | None:
    """The service line a problem sits on: its own line_number when readable, else its position."""
    if len(loc) < 3 or loc[:2] != _LINES or not isinstance(loc[2], int):
        return None
    line = lines[loc[2]] if isinstance(lines, list) and loc[2] < len(lines) else None
    number = line.get("line_number") if isinstance(line, dict) else None
    if isinstance(number, int) and not isinstance(number, bool) and number >= 1:
        return number
    return loc[2] + 1
