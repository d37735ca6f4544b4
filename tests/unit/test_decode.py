"""Decoding raw event bytes: readable, malformed (named claim), or unreadable (dead letter)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from service.decode import Malformed, Readable, Unreadable, decode
from service.tables import default_table
from service.verdicts import judge, judge_malformed
from tests.unit.casebook import build_event

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_readable_event_decodes_and_ignores_unknown_fields() -> None:
    raw = build_event()
    raw["x-extra"] = {"anything": 1}
    raw["claim"]["future_field"] = "tolerated"
    decoded = decode(json.dumps(raw).encode())
    assert isinstance(decoded, Readable)
    assert decoded.event.claim.claim_id == "CLM-TEST-0001"



def test_a_decoded_claim_prints_without_the_patient_identifiers() -> None:
    decoded = decode(json.dumps(build_event()).encode())
    assert isinstance(decoded, Readable)
    patient = decoded.event.claim.patient
    assert (patient.member_id, patient.birth_date.isoformat()) == ("TESTMEMBER1", "1951-07-14")
    for shown in (repr(decoded), str(decoded.event), repr(patient)):
        assert "TESTMEMBER1" not in shown
        assert "1951" not in shown
    assert "CLM-TEST-0001" in repr(decoded)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not-json"),
        (b"", "not-json"),
        (None, "not-json"),
        (b'["a", "list"]', "not-an-object"),
        (b"42", "not-an-object"),
        (b'{"event_id": "e1", "claim": {"payer_id": "AETNA"}}', "no-claim-id"),
        (b'{"event_id": "e1", "claim": "CLM-1"}', "no-claim-id"),
        (b'{"claim": {"claim_id": "   "}}', "no-claim-id"),
        (b"\xff\xfe\x00garbage", "not-json"),
        (b'{"claim": {"claim_id": "CLM-1", "units": NaN}}', "not-json"),
        (b"[" * 100_000, "not-json"),
        (b'{"claim": {"claim_id": "' + b"C" * 129 + b'"}}', "no-claim-id"),
    ],
)
def test_unreadable_events_name_their_reason(raw: bytes | None, reason: str) -> None:
    decoded = decode(raw)
    assert isinstance(decoded, Unreadable)
    assert reason == decoded.reason


def test_schema_breaking_claim_is_malformed_with_one_problem_per_field() -> None:
    raw = build_event(
        service_lines=[{"units": 0}, {"service_date": "2025-02-30"}, {"line_number": 1}],
    )
    del raw["claim"]["billing_provider_npi"]
    decoded = decode(json.dumps(raw).encode())
    assert isinstance(decoded, Malformed)
    paths = [path for path, _, _ in decoded.problems]
    assert "claim.billing_provider_npi" in paths
    assert "claim.service_lines[0].units" in paths
    assert "claim.service_lines[1].service_date" in paths
    numbered = {path: number for path, _, number in decoded.problems}
    assert 1 == numbered["claim.service_lines[0].units"]
    assert 2 == numbered["claim.service_lines[1].service_date"]
    assert numbered["claim.billing_provider_npi"] is None


def test_a_claim_whose_every_line_is_bad_reports_the_lines_not_a_missing_list() -> None:
    decoded = decode(json.dumps(build_event(service_lines=[{"units": 0}])).encode())
    assert isinstance(decoded, Malformed)
    assert [("claim.service_lines[0].units", 1)] == [(p, n) for p, _, n in decoded.problems]


@pytest.mark.parametrize("count", [0, 51])
def test_line_count_outside_1_to_50_is_malformed(count: int) -> None:
    raw = build_event(service_lines=[{}])
    raw["claim"]["service_lines"] = [
        {**raw["claim"]["service_lines"][0], "line_number": i + 1} for i in range(count)
    ]
    decoded = decode(json.dumps(raw).encode())
    assert isinstance(decoded, Malformed)
    assert [("claim.service_lines", f"a claim has 1 to 50 service lines, not {count}")] == [
        (p, t) for p, t, _ in decoded.problems
    ]


def test_a_count_over_50_is_the_one_problem_of_the_lines_even_when_lines_are_bad() -> None:
    """The count is taken from the raw list, not from the lines that happened to validate;
    size-limit problems come first, so a capped verdict still shows them."""
    raw = build_event(service_lines=[{"units": 0}])
    raw["claim"]["service_lines"] = raw["claim"]["service_lines"] * 60
    del raw["claim"]["billing_provider_npi"]
    decoded = decode(json.dumps(raw).encode())
    assert isinstance(decoded, Malformed)
    assert [
        ("claim.service_lines", "a claim has 1 to 50 service lines, not 60"),
        ("claim.billing_provider_npi", "Field required"),
    ] == [(p, t) for p, t, _ in decoded.problems]


def test_repeated_line_number_is_a_malformed_claim() -> None:
    raw = build_event(service_lines=[{"line_number": 1}, {"line_number": 1}])
    decoded = decode(json.dumps(raw).encode())
    assert isinstance(decoded, Malformed)
    assert any("line_number 1 is repeated" in text for _, text, _ in decoded.problems)


def test_malformed_verdict_is_flagged_and_never_echoes_values() -> None:
    raw = build_event(patient={"member_id": "PHI-MEMBER-XYZ", "birth_date": "not-a-date"})
    decoded = decode(json.dumps(raw).encode())
    assert isinstance(decoded, Malformed)
    verdict = judge_malformed(decoded, default_table(), now=NOW)
    assert "flagged" == verdict.verdict
    assert ["CLAIM_MALFORMED"] == [f.rule_id for f in verdict.findings]
    assert "claim.patient.birth_date" in verdict.findings[0].message
    text = verdict.model_dump_json()
    assert "not-a-date" not in text
    assert "PHI-MEMBER-XYZ" not in text


def test_verdict_id_is_deterministic_per_event_and_table() -> None:
    table = default_table()
    decoded = decode(json.dumps(build_event()).encode())
    assert isinstance(decoded, Readable)
    first = judge(decoded.event, table, now=NOW)
    again = judge(decoded.event, table, now=datetime(2027, 1, 1, tzinfo=UTC))
    other = decode(json.dumps({**build_event(), "event_id": "another"}).encode())
    assert isinstance(other, Readable)
    assert first.event_id == again.event_id
    assert first.event_id != judge(other.event, table, now=NOW).event_id
    assert first.causation_id == "0b7c2f0e-2d1e-4d4e-9a77-3f0f8f1f8a01"
    assert first.rule_table_version == table.version
