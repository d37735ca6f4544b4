"""Turning raw event bytes into a claim, a malformed-claim report, or an unreadable-event reason.

The three outcomes match the three paths of the service: a readable claim is judged; an event that
names a claim_id but breaks the schema gets a flagged verdict with one CLAIM_MALFORMED finding per
problem; anything else (too large, not JSON, not an object, no claim_id) is unreadable and goes to
the dead-letter topic. Messages name fields, never their values: values may be patient data.

Work per event is bounded by `Limits`:
- An event over `max_event_bytes` is a dead letter (`too-large`) before it is parsed: reading its
  claim_id would mean parsing what was just judged too large to parse.
- pydantic-core checks a list's length only after it has validated every item (and built an
  error for each bad one), so a huge list of empty service lines would cost time and memory in
  proportion. The fast path (straight to pydantic, the one step for a good claim) is taken only
  when the event has no more commas than a claim at every limit could have: the comma count
  bounds every list. Other events, and any event the fast path rejects, are parsed first and
  their known lists counted; a list over its limit is one problem and is left out of validation.
- Types are strict, as in the published schema: integers are JSON integers (no `true`, no `"1"`),
  within 32 bits; an integer of any size gives a CLAIM_MALFORMED finding, never a dead letter.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from service.claim_validator import claim_validator
from service.limits import DEFAULT_LIMITS, MAX_INTEGER, Limits
from service.models.events import ClaimSubmitted
from service.validation_errors import dotted_path, error_message

__all__ = [
    "UNREADABLE_REASONS",
    "Decoded",
    "Malformed",
    "Readable",
    "Unreadable",
    "decode",
    "field_path",
]

Problem = tuple[str, str, int | None]


@dataclass(frozen=True, slots=True)
class Readable:
    event: ClaimSubmitted


@dataclass(frozen=True, slots=True)
class Malformed:
    claim_id: str
    event_id: str | None
    problems: tuple[Problem, ...]
    """(field path, what is wrong, service line number or None): size limits first, then the
    schema problems in schema order."""
    raw_sha256: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    reason: str
    """A short code: `too-large`, `not-json`, `not-an-object`, `no-claim-id`."""
    detail: str


Decoded = Readable | Malformed | Unreadable

UNREADABLE_REASONS = frozenset({"too-large", "not-json", "not-an-object", "no-claim-id"})

_LINES = ("claim", "service_lines")
_COUNT_ERRORS = frozenset({"too_short", "too_long"})
_DEFAULT_VALIDATOR = ClaimSubmitted.__pydantic_validator__
"""The model's own validator: its declared constraints are the default limits."""


def field_path(loc: tuple[int | str, ...]) -> str:
    """`('claim', 'service_lines', 1, 'units')` -> `claim.service_lines[1].units`."""
    return dotted_path(loc, "(event)")


def decode(raw: bytes | None, limits: Limits = DEFAULT_LIMITS) -> Decoded:
    """Classify one event value, within `limits`. Never raises."""
    if raw is None:
        return Unreadable("not-json", "the event has no value (tombstone)")
    if len(raw) > limits.max_event_bytes:
        return Unreadable(
            "too-large",
            f"the event is {len(raw)} bytes, over the limit of {limits.max_event_bytes} bytes",
        )
    validator = _DEFAULT_VALIDATOR if limits is DEFAULT_LIMITS else claim_validator(limits)
    # A short event cannot hold more commas than it has bytes: no need to count them.
    if len(raw) <= limits.comma_budget or raw.count(b",") <= limits.comma_budget:
        try:
            return Readable(validator.validate_json(raw, strict=True))
        except ValidationError:
            pass  # worded from the parsed event below, where the work is bounded
    return _inspect(raw, limits, validator)


def _inspect(raw: bytes, limits: Limits, validator: Any) -> Decoded:
    """The careful path: parse, find the claim_id, count the lists, then validate."""
    parsed = _parse(raw)
    if isinstance(parsed, Unreadable):
        return parsed
    obj, exact = parsed
    if not isinstance(obj, dict):
        kind = type(obj).__name__
        return Unreadable("not-an-object", f"the event is a JSON {kind}, not an object")
    claim = obj.get("claim")
    claim_id = claim.get("claim_id") if isinstance(claim, dict) else None
    if not isinstance(claim, dict) or not isinstance(claim_id, str) or not claim_id.strip():
        return Unreadable("no-claim-id", "the event has no claim.claim_id string")
    claim_id = claim_id.strip()
    if len(claim_id) > limits.max_string_length:
        return Unreadable(
            "no-claim-id",
            f"claim.claim_id is longer than the limit of {limits.max_string_length} characters",
        )
    over, trimmed = _over_limits(obj, claim, limits)
    if trimmed is None and not exact:
        trimmed = obj  # validate the parsed event, its huge integers replaced
    try:
        event = validator.validate_json(raw if trimmed is None else _dumps(trimmed), strict=True)
    except ValidationError as exc:
        left_out = {path for path, _, _ in over}
        problems = over + _schema_problems(exc, claim, left_out)
    else:
        if not over:
            return Readable(event)  # e.g. many unknown fields: over the comma budget, yet good
        problems = over
    event_id = obj.get("event_id")
    usable = isinstance(event_id, str) and 0 < len(event_id) <= limits.max_string_length
    return Malformed(
        claim_id=claim_id,
        event_id=event_id if usable else None,
        problems=tuple(problems),
        raw_sha256=hashlib.sha256(raw).hexdigest(),
    )


def _parse(raw: bytes) -> tuple[object, bool] | Unreadable:
    """The event as Python data and whether it is exact, or why it is not JSON.

    The standard library parser keeps integers exact where orjson turns a large one into a float
    (or fails), so a 30-digit `units` is reported as out of range. An integer of more than 18
    digits is replaced by one that is out of range all the same (the data is then not exact):
    converting a huge one costs quadratic time, and the fast parsers reject it as invalid JSON.
    Only events the fast path did not accept get here.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Unreadable("not-json", f"not valid UTF-8 (at byte {exc.start})")
    replaced: list[str] = []

    def bounded_int(digits: str) -> int:
        if len(digits) <= 18:
            return int(digits)
        replaced.append(digits[:1])
        return -_OUT_OF_RANGE if digits.startswith("-") else _OUT_OF_RANGE

    try:
        obj = json.loads(text, parse_int=bounded_int, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return Unreadable("not-json", f"not valid JSON (at character {exc.pos})")
    except (ValueError, RecursionError):
        return Unreadable("not-json", "not valid JSON")
    return obj, not replaced


_OUT_OF_RANGE = 2**63 - 1


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _dumps(obj: object) -> bytes:
    return json.dumps(obj).encode()


def _over_limits(
    obj: dict[str, Any], claim: dict[str, Any], limits: Limits
) -> tuple[list[Problem], dict[str, Any] | None]:
    """The size-limit problems, and a copy of the event without the lists that broke a limit.

    The copy is None when nothing broke a limit (the raw bytes are validated as they are).
    """
    over: list[Problem] = []
    new_claim = dict(claim)
    lines = claim.get("service_lines")
    if isinstance(lines, list) and not 1 <= len(lines) <= limits.max_service_lines:
        text = f"a claim has 1 to {limits.max_service_lines} service lines, not {len(lines)}"
        over.append(("claim.service_lines", text, None))
        del new_claim["service_lines"]
    elif isinstance(lines, list):
        new_lines = [_line_within(i, line, limits, over) for i, line in enumerate(lines)]
        new_claim["service_lines"] = new_lines
    codes = claim.get("diagnosis_codes")
    if isinstance(codes, list) and len(codes) > limits.max_diagnosis_codes:
        text = f"a claim has at most {limits.max_diagnosis_codes} diagnosis codes, not {len(codes)}"
        over.insert(0, ("claim.diagnosis_codes", text, None))
        del new_claim["diagnosis_codes"]
    if not over:
        return over, None
    return over, {**obj, "claim": new_claim}


_LINE_LISTS = (("modifiers", "modifiers"), ("diagnosis_pointers", "diagnosis pointers"))


def _line_within(index: int, line: object, limits: Limits, over: list[Problem]) -> object:
    if not isinstance(line, dict):
        return line
    new_line = None
    for key, words in _LINE_LISTS:
        items = line.get(key)
        if isinstance(items, list) and len(items) > limits.max_codes_per_line:
            most = limits.max_codes_per_line
            text = f"a service line has at most {most} {words}, not {len(items)}"
            path = f"claim.service_lines[{index}].{key}"
            over.append((path, text, _number_of(line, index)))
            new_line = new_line or dict(line)
            del new_line[key]
    return line if new_line is None else new_line


def _schema_problems(
    error: ValidationError, claim: dict[str, Any], left_out: set[str]
) -> list[Problem]:
    """One problem per schema error, in schema order, skipping the lists left out for size."""
    lines = claim.get("service_lines")
    out: list[Problem] = []
    for err in error.errors(include_input=False, include_url=False):
        if err["type"] in _COUNT_ERRORS:
            continue  # pydantic counts the items that validated; the raw lists are counted above
        loc = err["loc"]
        path = field_path(loc)
        if any(path == p or path.startswith((p + ".", p + "[")) for p in left_out):
            continue
        out.append((path, error_message(err), _line_number(lines, loc)))
    return out


def _line_number(lines: object, loc: tuple[int | str, ...]) -> int | None:
    """The service line a problem sits on: its own line_number when readable, else its position."""
    if len(loc) < 3 or loc[:2] != _LINES or not isinstance(loc[2], int):
        return None
    line = lines[loc[2]] if isinstance(lines, list) and loc[2] < len(lines) else None
    return _number_of(line, loc[2])


def _number_of(line: object, index: int) -> int:
    number = line.get("line_number") if isinstance(line, dict) else None
    if isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= MAX_INTEGER:
        return number
    return index + 1
