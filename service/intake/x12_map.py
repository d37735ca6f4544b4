"""From the segments of one 837P claim to a `claim.submitted` event (pure; no I/O, no clock).

`ClaimDraft` holds the segments the mapping needs, gathered by `x12_claims` while it walks the
file; `to_event` maps them onto the event contract and validates the result with the model.
Where a claim cannot be mapped, `Unmappable` says which element and why, without the value of a
patient's member ID or birth date.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from service.intake.x12_read import SegmentData
from service.models.events import ClaimSubmitted

__all__ = ["ClaimDraft", "Envelope", "LineDraft", "Unmappable", "creation_time", "to_event"]

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:claims-validator:x12-837p-intake")
"""event_id = uuid5 of this namespace and the claim's place in the interchange: re-ingesting a
file gives the same ids, so the service's idempotent consumers see a repeat, not a new claim."""

DIAGNOSIS_QUALIFIERS = frozenset({"ABK", "ABF", "BK", "BF"})
"""HI composite qualifiers of diagnoses: ICD-10-CM principal/other and ICD-9-CM principal/other
(ICD-9 codes are passed on as written; the engine reports them as invalid ICD-10-CM codes)."""


class Unmappable(Exception):
    """The claim's segments do not make a valid event; the message names the element."""


@dataclass(slots=True)
class Envelope:
    """Interchange, group and transaction-set values every claim of the set shares."""

    sender: str = ""
    control_number: str = ""
    group_control_number: str = ""
    transaction_control_number: str = ""
    created: datetime | None = None


@dataclass(slots=True)
class LineDraft:
    position: int
    lx: SegmentData
    sv1: SegmentData | None = None
    dtp472: SegmentData | None = None
    rendering_npi: str | None = None


@dataclass(slots=True)
class ClaimDraft:
    position: int
    clm: SegmentData
    envelope: Envelope
    billing_npi: str | None
    billing_taxonomy: str | None
    member_id: str | None
    birth_date: SegmentData | None
    """The DMG segment of the patient: loop 2010CA when there is one, else 2010BA."""
    payer_id: str | None
    diagnoses: list[SegmentData] = field(default_factory=list)
    rendering_npi: str | None = None
    rendering_taxonomy: str | None = None
    lines: list[LineDraft] = field(default_factory=list)

    @property
    def claim_id(self) -> str:
        return (self.clm.get_value("CLM01") or "").strip()


def _text(segment: SegmentData | None, ref: str) -> str:
    if segment is None:
        return ""
    return (segment.get_value(ref) or "").strip()


def _date(value: str, ref: str) -> date:
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise Unmappable(f"{ref} is not a CCYYMMDD date") from None


def _service_date(line: LineDraft) -> date:
    if line.dtp472 is None:
        raise Unmappable(f"line {_text(line.lx, 'LX01')}: no DTP*472 service date")
    qualifier, value = _text(line.dtp472, "DTP02"), _text(line.dtp472, "DTP03")
    if qualifier == "RD8":
        # A range of dates on one line: the event has one service date, the range's first.
        value = value.split("-", 1)[0]
    elif qualifier != "D8":
        raise Unmappable(f"line {_text(line.lx, 'LX01')}: DTP02 must be D8 or RD8")
    return _date(value, f"line {_text(line.lx, 'LX01')} DTP03")


def _units(sv1: SegmentData, line_no: str) -> int:
    basis = _text(sv1, "SV103")
    if basis != "UN":
        raise Unmappable(f"line {line_no}: SV103 unit basis {basis or '(none)'} is not UN")
    try:
        units = Decimal(_text(sv1, "SV104"))
    except InvalidOperation:
        raise Unmappable(f"line {line_no}: SV104 is not a number") from None
    if units != units.to_integral_value():
        raise Unmappable(f"line {line_no}: SV104 {units} is not a whole number of units")
    return int(units)


def _line(line: LineDraft, claim_pos: str) -> dict[str, Any]:
    line_no = _text(line.lx, "LX01")
    sv1 = line.sv1
    if sv1 is None:
        raise Unmappable(f"line {line_no}: no SV1 segment")
    qualifier = _text(sv1, "SV101-1")
    if qualifier != "HC":
        raise Unmappable(f"line {line_no}: SV101-1 {qualifier or '(none)'} is not HC (HCPCS/CPT)")
    pointers = [_text(sv1, f"SV107-{i}") for i in range(1, 5)]
    try:
        charge = Decimal(_text(sv1, "SV102"))
        number = int(line_no)
        pointer_numbers = [int(p) for p in pointers if p]
    except (InvalidOperation, ValueError):
        raise Unmappable(f"line {line_no}: LX01, SV102 or SV107 is not a number") from None
    return {
        "line_number": number,
        "procedure_code": _text(sv1, "SV101-2"),
        "modifiers": [m for m in (_text(sv1, f"SV101-{i}") for i in range(3, 7)) if m],
        "units": _units(sv1, line_no),
        "place_of_service": _text(sv1, "SV105") or claim_pos,
        "service_date": _service_date(line),
        "diagnosis_pointers": pointer_numbers,
        "charge_amount": charge,
        "rendering_provider_npi": line.rendering_npi,
    }


def _diagnoses(segments: list[SegmentData]) -> list[str]:
    codes: list[str] = []
    for hi in segments:
        for i in range(1, 13):
            if _text(hi, f"HI{i:02d}-1") in DIAGNOSIS_QUALIFIERS:
                codes.append(_text(hi, f"HI{i:02d}-2"))
    return codes


def _event_id(draft: ClaimDraft) -> str:
    env = draft.envelope
    name = "|".join(
        (
            env.sender,
            env.control_number,
            env.group_control_number,
            env.transaction_control_number,
            draft.claim_id,
            str(draft.position),
        )
    )
    return str(uuid.uuid5(_NAMESPACE, name))


def _required(value: str | None, what: str) -> str:
    if not value:
        raise Unmappable(f"no {what}")
    return value


def to_event(draft: ClaimDraft, payer_ids: Mapping[str, str]) -> ClaimSubmitted:
    """The event of one claim; `payer_ids` maps 2010BB NM109 (upper case) to service payer ids."""
    if draft.envelope.created is None:
        raise Unmappable("no BHT04/BHT05 (or GS04/GS05) creation date and time")
    payer = _required(draft.payer_id, "payer identifier (2010BB NM109)")
    billing_npi = _required(draft.billing_npi, "billing provider NPI (2010AA NM108 XX, NM109)")
    member_id = _required(draft.member_id, "subscriber member ID (2010BA NM109)")
    if draft.birth_date is None or _text(draft.birth_date, "DMG01") != "D8":
        raise Unmappable("no patient birth date (DMG*D8 in loop 2010CA or 2010BA)")
    birth_date = _date(_text(draft.birth_date, "DMG02"), "the patient's DMG02")
    claim_pos = _text(draft.clm, "CLM05-1")
    claim = {
        "claim_id": draft.claim_id,
        "payer_id": payer_ids.get(payer.upper(), payer),
        "patient": {"member_id": member_id, "birth_date": birth_date},
        "billing_provider_npi": billing_npi,
        "rendering_provider": {
            # Loop 2310B is left out when the rendering provider is the billing provider.
            "npi": draft.rendering_npi or billing_npi,
            "taxonomy_code": draft.rendering_taxonomy
            if draft.rendering_npi
            else draft.billing_taxonomy,
        },
        "diagnosis_codes": _diagnoses(draft.diagnoses),
        "service_lines": [_line(line, claim_pos) for line in draft.lines],
    }
    try:
        return ClaimSubmitted.model_validate(
            {
                "event_id": _event_id(draft),
                "event_type": "claim.submitted",
                "schema_version": 1,
                "occurred_at": draft.envelope.created,
                "claim": claim,
            }
        )
    except ValidationError as exc:
        # loc and msg only: pydantic keeps the offending input apart, and it may be PHI.
        problems = "; ".join(
            ".".join(str(part) for part in err["loc"]) + f": {err['msg']}" for err in exc.errors()
        )
        raise Unmappable(problems) from None


def creation_time(day: str, time: str) -> datetime | None:
    """BHT04/BHT05 or GS04/GS05 (CCYYMMDD, HHMM[SS[D..]]) as UTC: X12 carries no time zone."""
    digits = (time or "")[:6].ljust(6, "0")
    try:
        return datetime.strptime(day + digits, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
