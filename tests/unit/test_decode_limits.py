"""Bounded work and strict types in the decoder: what a producer sees for oversized, lax events."""

from __future__ import annotations

import json
import time
import tracemalloc
from datetime import UTC, datetime

import pytest

from service.decode import Malformed, Readable, Unreadable, decode
from service.limits import DEFAULT_LIMITS, Limits
from service.models.events import VerdictEvent
from service.settings import ConfigError, LimitSettings, Settings, load_settings
from service.tables import default_table
from service.verdicts import judge_raw
from tests.unit.casebook import build_event

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def line_event(**line: object) -> bytes:
    return json.dumps(build_event(service_lines=[line])).encode()


def problems(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> list[tuple[str, str]]:
    decoded = decode(raw, limits)
    assert isinstance(decoded, Malformed), decoded
    return [(path, text) for path, text, _ in decoded.problems]


@pytest.mark.parametrize(
    ("line", "path", "text"),
    [
        ({"units": True}, "units", "Input should be a valid integer"),
        ({"units": "1"}, "units", "Input should be a valid integer"),
        ({"units": 1.0}, "units", "Input should be a valid integer"),
        ({"line_number": "1"}, "line_number", "Input should be a valid integer"),
        ({"diagnosis_pointers": [True]}, "diagnosis_pointers[0]", "Input should be a valid int"),
        ({"charge_amount": True}, "charge_amount", "Decimal input should be an integer, float,"),
        ({"service_date": 20250304}, "service_date", "Input should be a valid date"),
        ({"modifiers": [50]}, "modifiers[0]", "Input should be a valid string"),
    ],
)
def test_lax_values_the_schema_forbids_are_malformed(
    line: dict[str, object], path: str, text: str
) -> None:
    [(got_path, got_text)] = problems(line_event(**line))
    assert f"claim.service_lines[0].{path}" == got_path
    assert got_text.startswith(text)


@pytest.mark.parametrize("amount", ["425.00", 425, 425.5])
def test_a_charge_is_a_json_number_or_a_decimal_string(amount: object) -> None:
    decoded = decode(line_event(charge_amount=amount))
    assert isinstance(decoded, Readable)


@pytest.mark.parametrize("digits", [11, 30, 5000, 100_000])
def test_an_integer_of_any_size_is_out_of_range_not_a_dead_letter(digits: int) -> None:
    raw = json.dumps(build_event()).replace('"units": 1', '"units": ' + "9" * digits).encode()
    assert [
        ("claim.service_lines[0].units", "Input should be less than or equal to 2147483647")
    ] == problems(raw)


def test_a_huge_negative_pointer_is_out_of_range() -> None:
    text = json.dumps(build_event())
    raw = text.replace('"diagnosis_pointers": [1]', '"diagnosis_pointers": [-1' + "0" * 40 + "]")
    assert [
        (
            "claim.service_lines[0].diagnosis_pointers[0]",
            "Input should be greater than or equal to -2147483648",
        )
    ] == problems(raw.encode())


def test_a_huge_integer_in_an_unknown_field_is_tolerated() -> None:
    huge = '"claim": {"x-seq": ' + "7" * 40 + ", "
    raw = json.dumps(build_event()).replace('"claim": {', huge, 1)
    decoded = decode(raw.encode())
    assert isinstance(decoded, Readable)


def test_an_event_over_the_byte_limit_is_a_dead_letter_before_parsing() -> None:
    raw = json.dumps(build_event(service_lines=[{}] * 3)).encode()
    decoded = decode(raw, Limits(max_event_bytes=len(raw) - 1))
    assert Unreadable(
        "too-large", f"the event is {len(raw)} bytes, over the limit of {len(raw) - 1} bytes"
    ) == decoded
    assert isinstance(decode(raw, Limits(max_event_bytes=len(raw))), Readable)


def test_more_diagnosis_codes_than_the_limit_is_one_problem() -> None:
    codes = [f"M54.{n}" for n in range(25)]
    assert [
        ("claim.diagnosis_codes", "a claim has at most 24 diagnosis codes, not 25")
    ] == problems(json.dumps(build_event(diagnosis_codes=codes)).encode())


def test_more_diagnosis_codes_than_an_837p_carries_is_left_to_the_rules() -> None:
    """13 codes: DIAGNOSIS_TOO_MANY with every other finding, not a malformed claim."""
    raw = json.dumps(build_event(diagnosis_codes=[f"M54.{n}" for n in range(13)])).encode()
    verdict = judge_raw(raw, default_table(), now=NOW)
    assert isinstance(verdict, VerdictEvent)
    assert "DIAGNOSIS_TOO_MANY" in {f.rule_id for f in verdict.findings}


def test_more_modifiers_or_pointers_than_the_limit_is_one_problem_each() -> None:
    raw = json.dumps(
        build_event(service_lines=[{}, {"modifiers": ["59"] * 13, "diagnosis_pointers": [1] * 14}])
    ).encode()
    decoded = decode(raw)
    assert isinstance(decoded, Malformed)
    assert [
        ("claim.service_lines[1].modifiers", "a service line has at most 12 modifiers, not 13", 2),
        (
            "claim.service_lines[1].diagnosis_pointers",
            "a service line has at most 12 diagnosis pointers, not 14",
            2,
        ),
    ] == list(decoded.problems)


def test_a_text_field_over_the_length_limit_is_malformed() -> None:
    raw = line_event(procedure_code="6" * 129, modifiers=["5" * 128])
    assert [
        ("claim.service_lines[0].procedure_code", "String should have at most 128 characters")
    ] == problems(raw)


def test_a_long_event_id_is_reported_and_not_echoed() -> None:
    raw = {**build_event(), "event_id": "E" * 500}
    decoded = decode(json.dumps(raw).encode())
    assert isinstance(decoded, Malformed)
    assert decoded.event_id is None
    assert [("event_id", "String should have at most 128 characters")] == [
        (p, t) for p, t, _ in decoded.problems
    ]


def test_configured_limits_replace_the_defaults_the_model_declares() -> None:
    tight = Limits(
        max_service_lines=2, max_diagnosis_codes=1, max_codes_per_line=1, max_string_length=40
    )
    assert [("claim.service_lines", "a claim has 1 to 2 service lines, not 3")] == problems(
        json.dumps(build_event(service_lines=[{}, {}, {}], diagnosis_codes=["M54.2"])).encode(),
        tight,
    )
    assert [("claim.diagnosis_codes", "a claim has at most 1 diagnosis codes, not 2")] == problems(
        json.dumps(build_event()).encode(), tight
    )
    long_id = json.dumps(build_event(diagnosis_codes=["M54.2"], payer_id="P" * 41)).encode()
    assert [("claim.payer_id", "String should have at most 40 characters")] == problems(
        long_id, tight
    )
    roomy = Limits(max_service_lines=60, max_string_length=300)
    lines = [{"procedure_code": "9" * 200}] + [{}] * 59
    decoded = decode(json.dumps(build_event(service_lines=lines)).encode(), roomy)
    assert isinstance(decoded, Readable)
    assert 60 == len(decoded.event.claim.service_lines)


def test_an_event_with_many_unknown_fields_is_still_readable() -> None:
    """Over the comma budget, the event is counted before validation, and still judged."""
    raw = build_event()
    raw["x-audit"] = list(range(DEFAULT_LIMITS.comma_budget + 10))
    decoded = decode(json.dumps(raw).encode())
    assert isinstance(decoded, Readable)


def test_limit_settings_defaults_are_the_decoder_defaults() -> None:
    assert LimitSettings().limits() is DEFAULT_LIMITS
    assert Settings().limits.limits() is DEFAULT_LIMITS
    assert Limits(max_findings=7) == LimitSettings(max_findings=7).limits()
    assert set(LimitSettings.model_fields) == {
        name for name in Limits.__dataclass_fields__ if name != "comma_budget"
    }


def test_limits_are_read_from_claims_limits_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_LIMITS__MAX_FINDINGS", "7")
    monkeypatch.setenv("CLAIMS_LIMITS__MAX_EVENT_BYTES", "65536")
    limits = load_settings().limits.limits()
    assert (7, 65536, 50) == (
        limits.max_findings,
        limits.max_event_bytes,
        limits.max_service_lines,
    )
    monkeypatch.setenv("CLAIMS_LIMITS__MAX_SERVICE_LINES", "0")
    with pytest.raises(ConfigError, match="CLAIMS_LIMITS__MAX_SERVICE_LINES"):
        load_settings()


def test_limits_reject_nonsense_values() -> None:
    with pytest.raises(ValueError, match="max_service_lines"):
        Limits(max_service_lines=0)
    with pytest.raises(ValueError, match="max_findings"):
        Limits(max_findings=1)


def _with_list(item: str, count: int, key: str, *, on_line: bool = False) -> bytes:
    """The event whose claim (or first line) has `count` copies of the JSON text `item` as `key`."""
    raw = build_event()
    (raw["claim"]["service_lines"][0] if on_line else raw["claim"])[key] = "LIST"
    return json.dumps(raw).replace('"LIST"', "[" + ",".join([item] * count) + "]", 1).encode()


def _worst_inputs() -> list[tuple[str, bytes]]:
    """Events at the byte limit built to cost the most: long lists, many errors, long texts."""
    room = DEFAULT_LIMITS.max_event_bytes - 2000
    budget = DEFAULT_LIMITS.comma_budget - json.dumps(build_event()).count(",")
    wrong_line = json.dumps(
        {"line_number": True, "units": "1", "modifiers": [1] * 12, "diagnosis_pointers": ["x"] * 12}
    )
    huge = json.dumps(build_event()).replace('"units": 1', '"units": ' + "9" * room, 1)
    return [
        ("empty service lines", _with_list("{}", room // 3, "service_lines")),
        ("empty lines under the comma budget", _with_list("{}", budget, "service_lines")),
        ("every line wrong", _with_list(wrong_line, 50, "service_lines")),
        ("diagnosis codes", _with_list('"A"', room // 4, "diagnosis_codes")),
        ("modifiers", _with_list('"5"', room // 4, "modifiers", on_line=True)),
        ("pointers", _with_list("1", room // 2, "diagnosis_pointers", on_line=True)),
        ("long text", json.dumps(build_event(payer_id="P" * room)).encode()),
        ("deep nesting", b'{"claim": {"claim_id": "C", "x": ' + b"[" * room + b"}}"),
        ("huge integer", huge.encode()),
    ]


@pytest.mark.parametrize(("name", "raw"), _worst_inputs(), ids=[n for n, _ in _worst_inputs()])
def test_work_per_event_is_bounded_on_the_worst_inputs(name: str, raw: bytes) -> None:
    """Time and Python memory stay small; the verdict stays small, whatever the input."""
    assert len(raw) <= DEFAULT_LIMITS.max_event_bytes, name
    table = default_table()
    judge_raw(json.dumps(build_event()).encode(), table, now=NOW)  # warm the table's lazy parts
    tracemalloc.start()
    start = time.perf_counter()
    try:
        verdict = judge_raw(raw, table, now=NOW)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5, name
    assert peak < 32 * 2**20, name
    if isinstance(verdict, VerdictEvent):
        assert "flagged" == verdict.verdict
        assert len(verdict.findings) <= DEFAULT_LIMITS.max_findings
        assert len(verdict.model_dump_json()) < 256 * 1024
    else:
        assert verdict.reason in {"not-json", "too-large"}, name
