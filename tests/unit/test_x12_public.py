"""`claims-validator ingest` on published 837P sample files (tests/fixtures/x12/README.md).

Each expected value below was read off the sample file by hand, segment by segment.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from service.cli import main
from service.models.events import ClaimSubmitted

ROOT = Path(__file__).parents[2]
PUBLIC = ROOT / "tests" / "fixtures" / "x12" / "public"
SCHEMA = json.loads((ROOT / "schemas" / "claim.submitted.v1.json").read_text())


def ingest(
    capsysbinary: pytest.CaptureFixture[bytes], *files: Path
) -> tuple[int, list[Any], list[Any]]:
    code = main(["ingest", *map(str, files)])
    captured = capsysbinary.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines()]
    errors = [json.loads(line) for line in captured.err.splitlines()]
    return code, events, errors


def only_event(capsysbinary: pytest.CaptureFixture[bytes], name: str) -> ClaimSubmitted:
    code, events, errors = ingest(capsysbinary, PUBLIC / name)
    assert (0, []) == (code, errors)
    assert 1 == len(events)
    jsonschema.validate(events[0], SCHEMA)
    return ClaimSubmitted.model_validate(events[0])


def test_dependent_patient_with_four_lines(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    event = only_event(capsysbinary, "demo.example1.837")
    claim = event.claim
    assert "26463774" == claim.claim_id
    assert "999996666" == claim.payer_id  # 2010BB NM109, no payer map given
    # The member ID is the subscriber's (2010BA); the birth date the patient's (2010CA).
    patient = claim.patient
    assert ("JS00111223333", date(1973, 5, 1)) == (patient.member_id, patient.birth_date)
    assert "1912301953" == claim.billing_provider_npi
    # No 2310B: the billing provider renders, with its 2000A PRV taxonomy.
    assert ("1912301953", "203BF0100Y") == (
        claim.rendering_provider.npi,
        claim.rendering_provider.taxonomy_code,
    )
    assert ("0340", "V7389") == claim.diagnosis_codes
    assert [
        (1, "99213", Decimal("40.00"), date(2006, 10, 3), (1,)),
        (2, "87070", Decimal("15.00"), date(2006, 10, 3), (1,)),
        (3, "99214", Decimal("35.00"), date(2006, 10, 10), (2,)),
        (4, "86663", Decimal("10.00"), date(2006, 10, 10), (2,)),
    ] == [
        (ln.line_number, ln.procedure_code, ln.charge_amount, ln.service_date,
         ln.diagnosis_pointers)
        for ln in claim.service_lines
    ]
    assert {("11", 1, ())} == {(ln.place_of_service, ln.units, ln.modifiers)
                               for ln in claim.service_lines}
    # BHT04/BHT05 20061015 1023, not the wall clock.
    assert "2006-10-15T10:23:00+00:00" == event.occurred_at.isoformat()


def test_subscriber_is_the_patient(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    claim = only_event(capsysbinary, "demo.example2.837").claim
    assert ("26462967", "741234") == (claim.claim_id, claim.payer_id)
    assert ("00221111", date(1943, 5, 1)) == (claim.patient.member_id, claim.patient.birth_date)
    assert "9876543210" == claim.billing_provider_npi
    assert 4 == len(claim.service_lines)


def test_modifiers_and_a_date_range(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    claim = only_event(capsysbinary, "demo.example8.837").claim
    (line,) = claim.service_lines
    assert ("K0001", ("RR", "KH", "BR")) == (line.procedure_code, line.modifiers)
    assert "12" == line.place_of_service  # CLM05-1
    assert date(2005, 3, 21) == line.service_date  # RD8 20050321-20050321: its start
    assert (1, 2) == line.diagnosis_pointers
    assert ("987654321A", date(1920, 10, 23)) == (claim.patient.member_id,
                                                  claim.patient.birth_date)


def test_rendering_provider_loop(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    claim = only_event(capsysbinary, "demo.autoaccident.837").claim
    assert ("2366552595", "208D00000X") == (
        claim.rendering_provider.npi,
        claim.rendering_provider.taxonomy_code,
    )
    assert "1253695747" == claim.billing_provider_npi
    assert date(1948, 6, 1) == claim.patient.birth_date  # 2010CA, not the subscriber
    assert ["99201", "26010"] == [ln.procedure_code for ln in claim.service_lines]


def test_line_place_of_service(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    claim = only_event(capsysbinary, "demo.drug.example10.1.837").claim
    assert ["11", "11"] == [ln.place_of_service for ln in claim.service_lines]  # SV105
    assert ["90782", "J1550"] == [ln.procedure_code for ln in claim.service_lines]
    assert ("1122333341", "208D00000X") == (
        claim.rendering_provider.npi,
        claim.rendering_provider.taxonomy_code,
    )
    assert "PLANID12345" == claim.payer_id


def test_missing_mandatory_loop_rejects_the_claim(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    code, events, errors = ingest(capsysbinary, PUBLIC / "demo.cob.example3.A.837")
    assert (1, []) == (code, events)
    source = str(PUBLIC / "demo.cob.example3.A.837")
    assert [
        {
            "error": "x12-error",
            "source": source,
            "segment": 44,
            "segment_id": "LX",
            "level": "segment",
            "code": "3",
            "message": 'Mandatory loop "Other Payer Name" (2330B) missing',
        },
        {
            "error": "claim-rejected",
            "source": source,
            "segment": 31,
            "claim_id": "26407789",
            "detail": "X12 errors in the claim or its envelope, the first at segment 44",
        },
    ] == errors


def test_wrong_component_separator_is_reported_per_element(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    code, events, errors = ingest(capsysbinary, PUBLIC / "demo.example6.837")
    assert (1, []) == (code, events)
    clm = [e for e in errors if e.get("segment") == 21 and e["error"] == "x12-error"]
    assert {("CLM", "CLM05-01", "5"), ("CLM", "CLM05-01", "7")} <= {
        (e["segment_id"], e.get("element"), e["code"]) for e in clm
    }
    assert [("claim-rejected", "125WILL", 21)] == [
        (e["error"], e["claim_id"], e["segment"]) for e in errors if e["error"] != "x12-error"
    ]


def test_every_sample_file_in_one_run(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    files = sorted(PUBLIC.glob("*.837"))
    code, events, errors = ingest(capsysbinary, *files)
    assert 1 == code
    assert 5 == len(events)
    rejected = [e["claim_id"] for e in errors if e["error"] == "claim-rejected"]
    assert ["26407789", "125WILL"] == rejected
    # Nothing is silently dropped: every CLM of every file is an event or a rejection.
    clms = sum(f.read_text().count("\nCLM*") for f in files)
    assert clms == len(events) + len(rejected)
