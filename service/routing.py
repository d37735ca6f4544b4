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

Each call returns one `Outcome`, from which the handler derives the publish, the log line and
the metrics. This runs once per claim, so the verdict path builds only what is used: named
tuples, the JSON straight from the model's serializer, and fallbacks (a compact verdict, a dead
letter) only when the broker refuses a record.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from service.decode import Unreadable
from service.limits import DEFAULT_LIMITS, Limits
from service.models.events import VerdictEvent
from service.ruletable.compiled import RuleTable
from service.verdicts import judge_raw

__all__ = [
    "DLQ_HEADER_PREFIX",
    "INTERNAL_ERROR",
    "JSON_HEADERS",
    "InputRecord",
    "OutRecord",
    "Outcome",
    "Source",
    "Topics",
    "compact_verdict",
    "route",
]

VERDICT_TOO_LARGE = "verdict-too-large"
"""x-dlq-reason when even the compact verdict is over the broker's size limit."""
INTERNAL_ERROR = "internal-error"
"""x-dlq-reason of a record the service failed on (a bug): counted by the internal-error brake."""

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
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...


@dataclass(frozen=True, slots=True)
class Topics:
    accepted: str
    flagged: str
    dead_letter: str
    group_id: str
    """Named in x-dlq-group: which consumer group gave up on the record."""


class OutRecord(NamedTuple):
    """One record to produce. `fallback` replaces it if the broker refuses it for good."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    fallback: OutRecord | None = None

    @property
    def out(self) -> OutRecord:
        return self

    def refused(self) -> OutRecord | None:
        return self.fallback


class Source(NamedTuple):
    """Where a consumed record came from."""

    topic: str
    partition: int
    offset: int


class Outcome(NamedTuple):
    """What became of one consumed record: the one typed result the publish, the log line and
    the metrics are all derived from.

    `kind` is `verdict` (a verdict on the accepted or flagged topic) or `dead_letter` (the
    original record on the dead-letter topic, `reason` saying why). `fallback` is what is
    published instead if the broker refuses `out` for good (its size): a compact verdict, then
    the dead letter, then the dead letter without its value."""

    kind: str
    out: OutRecord
    source: Source
    claim_id: str | None
    verdict: str | None
    rule_ids: tuple[str, ...]
    event_id: str | None
    reason: str | None
    detail: str | None
    duration_ms: float
    fallback: Callable[[], Outcome] | None = None
    """Built only when needed: what replaces this outcome if the broker refuses `out`."""

    def refused(self) -> Outcome | None:
        """What to publish instead when the broker refuses `out` for good; None: nothing."""
        if self.fallback is not None:
            return self.fallback()
        if self.out.fallback is not None:
            return self._replace(out=self.out.fallback)
        return None


def route(
    record: InputRecord,
    table: RuleTable,
    topics: Topics,
    *,
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
) -> Outcome:
    """The outcome for one consumed record. Never raises for anything a record can contain."""
    started = time.perf_counter()
    source = Source(record.topic, record.partition, record.offset)
    try:
        verdict = judge_raw(record.value, table, now=now, limits=limits)
        if isinstance(verdict, Unreadable):
            return _dead_letter(record, source, topics, verdict.reason, verdict.detail, started)
        return _verdict(record, source, verdict, topics, started)
    except Exception as exc:  # a bug for one record must not stop the stream
        return _dead_letter(record, source, topics, INTERNAL_ERROR, _where(exc), started)


def _verdict(
    record: InputRecord,
    source: Source,
    verdict: VerdictEvent,
    topics: Topics,
    started: float,
) -> Outcome:
    out_topic = topics.flagged if verdict.verdict == "flagged" else topics.accepted
    claim_id = verdict.claim_id
    key = claim_id.encode()
    rule_ids = tuple(f.rule_id for f in verdict.findings)

    def dead_letter() -> Outcome:
        return _dead_letter(
            record, source, topics, VERDICT_TOO_LARGE, _too_large(verdict), started
        )

    def compact() -> Outcome:
        smaller = compact_verdict(verdict)
        return Outcome(
            "verdict",
            OutRecord(out_topic, key, _verdict_json(smaller), JSON_HEADERS),
            source,
            claim_id,
            smaller.verdict,
            tuple(f.rule_id for f in smaller.findings),
            smaller.event_id,
            None,
            None,
            _ms_since(started),
            dead_letter,
        )

    return Outcome(
        "verdict",
        OutRecord(out_topic, key, _verdict_json(verdict), JSON_HEADERS),
        source,
        claim_id,
        verdict.verdict,
        rule_ids,
        verdict.event_id,
        None,
        None,
        _ms_since(started),
        compact,
    )


def compact_verdict(verdict: VerdictEvent) -> VerdictEvent:
    """The verdict with one finding per rule id (the first of each): same verdict, same id, a
    size bounded by the catalogue rather than by the claim."""
    seen: set[str] = set()
    kept = []
    for f in verdict.findings:
        if f.rule_id not in seen:
            seen.add(f.rule_id)
            kept.append(f)
    return verdict.model_copy(update={"findings": tuple(kept)})


def _too_large(verdict: VerdictEvent) -> str:
    return f"the verdict ({len(verdict.findings)} findings) is over the broker's size limit"


def _dead_letter(
    record: InputRecord,
    source: Source,
    topics: Topics,
    reason: str,
    detail: str,
    started: float,
) -> Outcome:
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
    # Sent instead, without the value, if the original plus our headers is too large; and
    # last, without the original key and headers either.
    bare = OutRecord(
        topic=topics.dead_letter,
        key=None,
        value=b"",
        headers=(*why, ("x-dlq-value-dropped", dropped), ("x-dlq-key-dropped", b"true")),
    )
    stripped = OutRecord(
        topic=topics.dead_letter,
        key=record.key,
        value=b"",
        headers=(*kept, *why, ("x-dlq-value-dropped", dropped)),
        fallback=bare,
    )
    return Outcome(
        "dead_letter",
        OutRecord(
            topic=topics.dead_letter,
            key=record.key,
            value=record.value,
            headers=(*kept, *why),
            fallback=stripped,
        ),
        source,
        None,
        None,
        (),
        None,
        reason,
        detail[:_DETAIL_LIMIT],
        _ms_since(started),
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
