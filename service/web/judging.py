"""What the API does with request bodies, without HTTP: split, wrap, judge, classify.

Pure (the clock is an argument). Every claim goes through `service.verdicts.judge_raw`, the
decode-and-judge dispatch of the Kafka path, so the API answers with the verdict that path
would publish for the same bytes. A bare claim (no `claim.submitted` envelope) is wrapped in
one first: its event id is derived from its bytes, so the same claim gets the same verdict id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Final

import orjson

from service.decode import Unreadable
from service.limits import DEFAULT_LIMITS, Limits
from service.models.events import VerdictEvent
from service.verdicts import judge_raw
from service.web.catalogue import RuleTable
from service.web.models import BatchItem, BatchResult, ErrorBody, ErrorCode

__all__ = [
    "MALFORMED_RULE",
    "BatchRefused",
    "Judged",
    "batch_item",
    "batch_result",
    "ids_of",
    "is_malformed",
    "judge_claim",
    "malformed_error",
    "split_batch",
    "unreadable_error",
]

MALFORMED_RULE: Final = "CLAIM_MALFORMED"
"""The rule of a claim that breaks the schema; its findings are the field-and-line errors."""

Judged = VerdictEvent | Unreadable
BARE_CLAIM_EVENT_PREFIX: Final = "sha256:"


def judge_claim(
    raw: bytes, table: RuleTable, *, now: datetime, limits: Limits = DEFAULT_LIMITS
) -> Judged:
    """One `claim.submitted` event, or a bare claim, to its verdict or why it is unreadable,
    within the same limits as the Kafka path."""
    return judge_raw(_as_event(raw, now), table, now=now, limits=limits)


def _as_event(raw: bytes, now: datetime) -> bytes:
    """A bare claim (an object with a claim_id and no `claim`) wrapped in a claim.submitted
    envelope; anything else unchanged, for `judge_raw` to judge or to call unreadable."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    if not isinstance(obj, dict) or "claim" in obj or "claim_id" not in obj:
        return raw
    return orjson.dumps(
        {
            "event_id": BARE_CLAIM_EVENT_PREFIX + hashlib.sha256(raw).hexdigest(),
            "event_type": "claim.submitted",
            "schema_version": 1,
            "occurred_at": now.isoformat(),
            "claim": obj,
        }
    )


def is_malformed(verdict: VerdictEvent) -> bool:
    return any(f.rule_id == MALFORMED_RULE for f in verdict.findings)


def malformed_error(verdict: VerdictEvent) -> ErrorBody:
    problems = tuple(f for f in verdict.findings if f.rule_id == MALFORMED_RULE)
    return ErrorBody(
        error="claim-malformed",
        detail=f"the claim breaks the claim.submitted schema in {len(problems)} "
        f"place{'s' if len(problems) != 1 else ''}; see problems",
        problems=problems,
        verdict=verdict,
    )


_UNREADABLE: Final[dict[str, ErrorCode]] = {
    "not-json": "not-json",
    "not-an-object": "not-an-object",
    "no-claim-id": "no-claim-id",
}


def unreadable_error(unreadable: Unreadable) -> ErrorBody:
    return ErrorBody(
        error=_UNREADABLE.get(unreadable.reason, "not-json"), detail=unreadable.detail
    )


class BatchRefused(Exception):
    """The batch as a whole cannot be judged: not a JSON array, or too many claims."""

    def __init__(self, error: ErrorBody) -> None:
        super().__init__(error.detail)
        self.error = error


def split_batch(raw: bytes, max_claims: int) -> list[tuple[int, bytes]]:
    """A JSON array or JSON Lines body to `(index, claim bytes)`; blank lines are skipped.

    Raises `BatchRefused` for a broken array or more than `max_claims` claims (counted before
    any is judged)."""
    if raw.lstrip()[:1] == b"[":
        try:
            items = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BatchRefused(
                ErrorBody(error="not-json", detail=f"the body is not a valid JSON array "
                          f"(at byte {exc.pos})")
            ) from None
        _check_count(len(items), max_claims)
        return [(i, orjson.dumps(item)) for i, item in enumerate(items, 1)]
    lines = [(n, line) for n, line in enumerate(raw.split(b"\n"), 1) if line.strip()]
    _check_count(len(lines), max_claims)
    return lines


def _check_count(count: int, max_claims: int) -> None:
    if count > max_claims:
        raise BatchRefused(
            ErrorBody(
                error="too-many-claims",
                detail=f"the batch has {count} claims; at most {max_claims} are judged per "
                "request (api.max_batch_claims): split it",
            )
        )


def batch_item(index: int, judged: Judged) -> BatchItem:
    if isinstance(judged, Unreadable):
        return BatchItem(
            index=index, status="unreadable", claim_id=None, error=unreadable_error(judged)
        )
    if is_malformed(judged):
        return BatchItem(
            index=index,
            status="malformed",
            claim_id=judged.claim_id,
            verdict=judged,
            error=malformed_error(judged),
        )
    return BatchItem(index=index, status=judged.verdict, claim_id=judged.claim_id, verdict=judged)


def batch_result(items: Sequence[BatchItem], version: str) -> BatchResult:
    counts = dict.fromkeys(("accepted", "flagged", "malformed", "unreadable"), 0)
    for item in items:
        counts[item.status] += 1
    return BatchResult(rule_table_version=version, counts=counts, results=tuple(items))


def ids_of(judged: Iterable[Judged]) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(claim id, rule ids) of each verdict: all the request log line may say about a claim."""
    for j in judged:
        if isinstance(j, VerdictEvent):
            yield j.claim_id, tuple(f.rule_id for f in j.findings)
