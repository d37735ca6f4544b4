"""Walking the segments of an 837P file: one draft per CLM loop, and which errors stop which claims.

Each X12 error pyx12 reports belongs to a scope: the interchange, the functional group, the
transaction set, a billing-provider (2000A), subscriber (2000B) or patient (2000C) loop, or one
claim (2300 and its lines). A claim becomes an event only when neither its own scope nor any
enclosing one has an error, the way a 999 rejects a whole transaction set and a TA1 a whole
interchange. A "mandatory segment/loop missing" error is reported at the segment after the gap,
so it belongs to the scope of the segment before it (the loop that was left incomplete).

Claims are held until their interchange closes (IEA, or the end of the file), because an
envelope error found at SE, GE or IEA rejects claims read before it. A claim is mapped as soon
as its loop ends, so what is held is its event's JSON (or why it cannot be mapped), not its
segments. Every claim is either emitted or reported: none is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from service.intake.x12_map import (
    ClaimDraft,
    Envelope,
    LineDraft,
    Unmappable,
    creation_time,
    to_event,
)
from service.intake.x12_read import EndOfFile, SegmentData, SegmentRecord, X12Error

__all__ = ["IMPLEMENTATION", "Assembler", "Emitted", "Problem"]

IMPLEMENTATION = "005010X222A1"
"""GS08/ST03 of the HIPAA 837 Professional implementation guide this intake reads."""

_MISSING = "3"
"""Segment error code: mandatory segment or loop missing (999 IK304 code 3)."""


@dataclass(frozen=True, slots=True)
class Emitted:
    """One claim's `claim.submitted` event, validated by the model and serialised."""

    claim_id: str
    event_json: bytes
    position: int


@dataclass(frozen=True, slots=True)
class Problem:
    """One JSON error object for standard error (no member ID or birth date in it)."""

    fields: dict[str, Any]


@dataclass(eq=False, slots=True)
class _Scope:
    parent: _Scope | None
    first_error: int | None = None
    envelope: Envelope = field(default_factory=Envelope)

    def failed_at(self) -> int | None:
        """Position of the first error in this scope or an enclosing one, or None."""
        scope: _Scope | None = self
        found: int | None = None
        while scope is not None:
            if scope.first_error is not None:
                found = scope.first_error if found is None else min(found, scope.first_error)
            scope = scope.parent
        return found


@dataclass(frozen=True, slots=True)
class _Parties:
    """What the HL loops above a claim say: billing provider, subscriber, patient, payer."""

    billing_npi: str | None = None
    billing_taxonomy: str | None = None
    member_id: str | None = None
    birth_date: SegmentData | None = None
    payer_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Held:
    claim_id: str
    position: int
    scope: _Scope
    outcome: bytes | Unmappable
    """The event's JSON, or why the claim cannot be mapped."""


class Assembler:
    """Feed it `read_segments` output for one file; it yields what to emit and what to report."""

    def __init__(self, source: str, payer_ids: Mapping[str, str]) -> None:
        self._source = source
        self._payer_ids = payer_ids
        self._interchange = _Scope(None)
        self._group = self._transaction = self._a = self._b = self._c = self._interchange
        self._claim: _Scope | None = None
        self._held: list[_Held] = []
        self._draft: ClaimDraft | None = None
        self._draft_scope = self._interchange
        self._line: LineDraft | None = None
        self._previous = self._interchange
        self._parties = _Parties()
        self.position = 0
        """The last segment position fed."""

    # -- the walk -----------------------------------------------------------------------------

    def feed(self, item: SegmentRecord | EndOfFile) -> Iterator[Emitted | Problem]:
        if isinstance(item, EndOfFile):
            for error in item.errors:
                self._interchange.first_error = self._interchange.first_error or item.position
                yield self._x12_problem(item.position, None, error)
            yield from self._release()
            return
        self.position = item.position
        self._open_scopes(item)
        scope = self._scope_of(item)
        errors = item.errors
        version = item.data.get_value("GS08") if item.segment_id == "GS" else IMPLEMENTATION
        if version != IMPLEMENTATION:
            # Another transaction (an 837I, an 835) parses, but its claims are not 837P claims.
            errors = (*errors, X12Error("group", "GS08", f"GS08 {version} is not {IMPLEMENTATION}"))
        for error in errors:
            target = self._target(item, scope, error)
            if target.first_error is None:
                target.first_error = item.position
            yield self._x12_problem(item.position, item.segment_id, error)
        self._collect(item)
        self._previous = scope
        if item.segment_id == "IEA":
            yield from self._release()

    def abort(self, error: str, position: int, detail: str) -> Iterator[Problem]:
        """Reading stopped: report the file, and every claim held, as not ingested."""
        yield Problem(
            {"error": error, "source": self._source, "segment": position, "detail": detail}
        )
        self._interchange.first_error = self._interchange.first_error or position
        for result in self._release():
            if isinstance(result, Problem):
                yield result

    def _open_scopes(self, item: SegmentRecord) -> None:
        sid, loops = item.segment_id, item.loops
        innermost = loops[-1] if loops else ""
        if sid == "ISA":
            self._interchange = _Scope(None)
            self._group = self._transaction = self._a = self._b = self._c = self._interchange
        elif sid == "GS":
            self._group = _Scope(self._interchange)
            self._transaction = self._a = self._b = self._c = self._group
        elif sid == "ST":
            self._transaction = _Scope(self._group)
            self._a = self._b = self._c = self._transaction
        elif sid == "HL" and innermost == "2000A":
            self._a = self._b = self._c = _Scope(self._transaction)
        elif sid == "HL" and innermost == "2000B":
            self._b = self._c = _Scope(self._a)
        elif sid == "HL" and innermost == "2000C":
            self._c = _Scope(self._b)
        elif sid == "CLM" and innermost == "2300":
            self._claim = _Scope(self._c if "2000C" in loops else self._b)

    def _scope_of(self, item: SegmentRecord) -> _Scope:
        loops = item.loops
        if "2300" in loops and self._claim is not None:
            return self._claim
        for loop, scope in (("2000C", self._c), ("2000B", self._b), ("2000A", self._a)):
            if loop in loops:
                return scope
        if "ST_LOOP" in loops:
            return self._transaction
        return self._group if "GS_LOOP" in loops else self._interchange

    def _target(self, item: SegmentRecord, scope: _Scope, error: X12Error) -> _Scope:
        if error.level == "interchange":
            return self._interchange
        if error.level == "group":
            return self._group
        if error.level == "transaction":
            return self._transaction
        if error.level == "segment" and error.code == _MISSING and item.segment_id != "ISA":
            return self._previous
        return scope

    # -- gathering the values a claim needs ---------------------------------------------------

    def _collect(self, item: SegmentRecord) -> None:
        sid, data, loops = item.segment_id, item.data, item.loops
        innermost = loops[-1] if loops else ""
        value = data.get_value
        env = self._transaction.envelope
        if sid == "ISA":
            self._interchange.envelope = Envelope(
                sender=(value("ISA06") or "").strip(), control_number=value("ISA13") or ""
            )
        elif sid == "GS":
            self._group.envelope = Envelope(
                sender=self._interchange.envelope.sender,
                control_number=self._interchange.envelope.control_number,
                group_control_number=value("GS06") or "",
                created=creation_time(value("GS04") or "", value("GS05") or ""),
            )
        elif sid == "ST":
            group = self._group.envelope
            self._transaction.envelope = Envelope(
                group.sender, group.control_number, group.group_control_number,
                value("ST02") or "", group.created,
            )
        elif sid == "BHT":
            env.created = creation_time(value("BHT04") or "", value("BHT05") or "") or env.created
        elif sid == "HL":
            self._close_claim()
            parties = self._parties
            if innermost == "2000A":
                self._parties = _Parties()
            elif innermost == "2000B":
                self._parties = _Parties(parties.billing_npi, parties.billing_taxonomy)
            else:  # 2000C: the patient's own DMG must follow in 2010CA
                self._parties = replace(parties, birth_date=None)
        elif sid == "PRV" and innermost == "2000A":
            self._parties = replace(self._parties, billing_taxonomy=value("PRV03"))
        elif sid == "NM1" and innermost == "2010AA" and value("NM108") == "XX":
            self._parties = replace(self._parties, billing_npi=value("NM109"))
        elif sid == "NM1" and innermost == "2010BA":
            member_id = (value("NM109") or "").strip() or None
            self._parties = replace(self._parties, member_id=member_id)
        elif sid == "DMG" and innermost in ("2010BA", "2010CA"):
            # 2010CA comes after 2010BA: the patient's date wins over the subscriber's.
            self._parties = replace(self._parties, birth_date=data)
        elif sid == "NM1" and innermost == "2010BB":
            payer_id = (value("NM109") or "").strip() or None
            self._parties = replace(self._parties, payer_id=payer_id)
        elif sid == "CLM" and innermost == "2300":
            self._close_claim()
            assert self._claim is not None  # opened by _open_scopes
            self._draft = ClaimDraft(
                position=item.position,
                clm=data,
                envelope=env,
                billing_npi=self._parties.billing_npi,
                billing_taxonomy=self._parties.billing_taxonomy,
                member_id=self._parties.member_id,
                birth_date=self._parties.birth_date,
                payer_id=self._parties.payer_id,
            )
            self._draft_scope = self._claim
        elif self._draft is not None and "2300" in loops:
            self._claim_segment(sid, data, innermost, item.position)
        elif sid in ("SE", "GE", "IEA"):
            self._close_claim()

    def _claim_segment(
        self, sid: str, data: SegmentData, innermost: str, position: int
    ) -> None:
        draft = self._draft
        assert draft is not None
        value = data.get_value
        if sid == "HI" and innermost == "2300":
            draft.diagnoses.append(data)
        elif sid == "NM1" and innermost == "2310B" and value("NM108") == "XX":
            draft.rendering_npi = value("NM109")
        elif sid == "PRV" and innermost == "2310B":
            draft.rendering_taxonomy = value("PRV03")
        elif sid == "LX" and innermost == "2400":
            self._line = LineDraft(position, data)
            draft.lines.append(self._line)
        elif self._line is None:
            return
        elif sid == "SV1" and innermost == "2400":
            self._line.sv1 = data
        elif sid == "DTP" and innermost == "2400" and value("DTP01") == "472":
            self._line.dtp472 = data
        elif sid == "NM1" and innermost == "2420A" and value("NM108") == "XX":
            self._line.rendering_npi = value("NM109")

    def _close_claim(self) -> None:
        """The claim's loop ended: map it now and hold only the outcome."""
        draft = self._draft
        if draft is not None:
            try:
                outcome: bytes | Unmappable = (
                    to_event(draft, self._payer_ids).model_dump_json().encode()
                )
            except Unmappable as exc:
                outcome = exc
            self._held.append(_Held(draft.claim_id, draft.position, self._draft_scope, outcome))
        self._draft = None
        self._line = None

    # -- results ------------------------------------------------------------------------------

    def _release(self) -> Iterator[Emitted | Problem]:
        self._close_claim()
        held, self._held = self._held, []
        for entry in held:
            base = {"source": self._source, "segment": entry.position, "claim_id": entry.claim_id}
            failed = entry.scope.failed_at()
            if failed is not None:
                detail = f"X12 errors in the claim or its envelope, the first at segment {failed}"
                yield Problem({"error": "claim-rejected", **base, "detail": detail})
            elif isinstance(entry.outcome, Unmappable):
                yield Problem({"error": "claim-unmappable", **base, "detail": str(entry.outcome)})
            else:
                yield Emitted(entry.claim_id, entry.outcome, entry.position)

    def _x12_problem(self, position: int, segment_id: str | None, error: X12Error) -> Problem:
        fields: dict[str, Any] = {
            "error": "x12-error",
            "source": self._source,
            "segment": position,
            "segment_id": segment_id,
            "level": error.level,
            "code": error.code,
            "message": error.message,
        }
        if error.element:
            fields["element"] = error.element
        return Problem(fields)
