"""From one consumed record to the one record to publish, and what to log about it.

Pure and synchronous (the clock is an argument): the Kafka shell in `service.handlers` only
publishes what this returns. Three outcomes, one per path of the service:

* a readable or malformed claim -> a `VerdictEvent` on the accepted or flagged topic,
  key = claim_id;
* an unreadable event -> the dead-letter topic with the ORIGINAL value, key and headers, plus
  `x-dlq-*` headers saying why and where it came from;
* anything the engine raises for one record -> the dead-letter topic with reason
  `internal-error`, so one bad record can never crash or stall the consumer.

Nothing returned for logging carries patient data or payload bytes: identifiers, rule ids and
Kafka coordinates only. Exception messages are not logged either (they may quote values).

This runs once per claim, so the verdict path builds only what is used: two named tuples (a
third of the cost of frozen dataclasses), the JSON straight from the model's serializer, and the
log fields.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from service.decode import Unreadable
from service.models.events import VerdictEvent
from service.ruletable.compiled import RuleTable
from service.verdicts import judge_raw

__all__ = [
    "DLQ_HEADER_PREFIX",
    "JSON_HEADERS",
    "InputRecord",
    "OutRecord",
    "Routed",
    "Topics",
    "route",
]

DLQ_HEADER_PREFIX = "x-dlq-"
JSON_HEADERS: tuple[tuple[str, bytes], ...] = (("content-type", b"application/json"),)
"""Verdict headers: FastStream (and most tools) decode a body as JSON on this header."""

_verdict_json = VerdictEvent.__pydantic_serializer__.to_json
"""`TypeAdapter(VerdictEvent).dump_json` without the adapter's Python layer (same bytes)."""
_DETAIL_LIMIT = 200
"""x-dlq-detail is a short human hint, never a payload excerpt."""


class InputRecord(Protocol):
    """What we read from a consumed record (aiokafka's ConsumerRecord has all of it)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class Topics:
    accepted: str
    flagged: str
    dead_letter: str
    group_id: str
    """Named in x-dlq-group: which consumer group gave up on the record."""


class OutRecord(NamedTuple):
    """One record to produce. `fallback` replaces it if the broker refuses its size."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    fallback: OutRecord | None = None


class Routed(NamedTuple):
    """The record to publish and the log line to write once the broker acknowledged it."""

    out: OutRecord
    event: str
    """`verdict` or `dead_lettered`."""
    fields: Mapping[str, Any]


def route(
    record: InputRecord, table: RuleTable, topics: Topics, *, now: datetime
) -> Routed:
    """The outcome for one consumed record. Never raises for anything a record can contain."""
    started = time.perf_counter()
    try:
        verdict = judge_raw(record.value, table, now=now)
        if isinstance(verdict, Unreadable):
            return _dead_letter(record, topics, verdict.reason, verdict.detail, started)
        return _verdict(record, verdict, topics, started)
    except Exception as exc:  # a bug for one record must not stop the stream
        return _dead_letter(record, topics, "internal-error", _where(exc), started)


def _verdict(
    record: InputRecord, verdict: VerdictEvent, topics: Topics, started: float
) -> Routed:
    out_topic = topics.flagged if verdict.verdict == "flagged" else topics.accepted
    claim_id = verdict.claim_id
    return Routed(
        OutRecord(out_topic, claim_id.encode(), _verdict_json(verdict), JSON_HEADERS),
        "verdict",
        {
            "claim_id": claim_id,
            "verdict": verdict.verdict,
            "rule_ids": [f.rule_id for f in verdict.findings],
            "rule_table_version": verdict.rule_table_version,
            "event_id": verdict.event_id,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "published_to": out_topic,
            "duration_ms": _ms_since(started),
        },
    )


def _dead_letter(
    record: InputRecord, topics: Topics, reason: str, detail: str, started: float
) -> Routed:
    kept = tuple(
        (name, value)
        for name, value in record.headers
        if not name.lower().startswith(DLQ_HEADER_PREFIX)
    )
    why = (
        ("x-dlq-reason", reason.encode()),
        ("x-dlq-detail", detail[:_DETAIL_LIMIT].encode()),
        ("x-dlq-topic", record.topic.encode()),
        ("x-dlq-partition", str(record.partition).encode()),
        ("x-dlq-offset", str(record.offset).encode()),
        ("x-dlq-timestamp", str(record.timestamp).encode()),
        ("x-dlq-group", topics.group_id.encode()),
    )
    dropped = f"{len(record.value or b'')} bytes, over the size limit".encode()
    # Sent instead, without the value, if the original plus our headers is too large.
    stripped = OutRecord(
        topic=topics.dead_letter,
        key=record.key,
        value=b"",
        headers=(*kept, *why, ("x-dlq-value-dropped", dropped)),
    )
    return Routed(
        out=OutRecord(
            topic=topics.dead_letter,
            key=record.key,
            value=record.value,
            headers=(*kept, *why),
            fallback=stripped,
        ),
        event="dead_lettered",
        fields={
            "reason": reason,
            "detail": detail[:_DETAIL_LIMIT],
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "published_to": topics.dead_letter,
            "duration_ms": _ms_since(started),
        },
    )


def _where(exc: BaseException) -> str:
    """`KeyError at service/engine/families/pairing.py:42`: the type and the innermost frame,
    never the message (a message may quote claim data)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    path = last.filename
    marker = path.rfind("/service/")
    short = path[marker + 1 :] if marker >= 0 else path.rsplit("/", 1)[-1]
    return f"{type(exc).__name__} at {short}:{last.lineno}"


def _ms_since(started: float) -> float:
    """Milliseconds to the microsecond (as round(ms, 3), at a quarter of its cost)."""
    return round((time.perf_counter() - started) * 1_000_000) / 1000
