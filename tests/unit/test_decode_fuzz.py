"""Property-based fuzzing of decode and judge: any bytes give a verdict or a dead-letter reason.

Inputs are arbitrary bytes, arbitrary JSON, and sample claims mutated at a random place (a value
replaced, a key dropped, a list multiplied, the text cut or a byte changed). Every input must give
a `VerdictEvent` or an `Unreadable` with a known reason, within a time and memory bound, with a
bounded verdict that never echoes the claim's patient identifier.

Repeatable in CI: examples are derived from the test itself (`derandomize`), no example database
is kept, and the example counts and deadlines are explicit.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.decode import UNREADABLE_REASONS, Unreadable
from service.limits import DEFAULT_LIMITS, Limits
from service.models.events import VerdictEvent
from service.tables import default_table
from service.verdicts import judge_raw

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SAMPLES = [
    json.loads(line)
    for line in (Path(__file__).parents[2] / "samples" / "claims.jsonl").read_text().splitlines()
]
TIGHT = Limits(
    max_event_bytes=4096,
    max_service_lines=3,
    max_diagnosis_codes=2,
    max_codes_per_line=2,
    max_string_length=16,
    max_findings=4,
)

SECONDS_PER_INPUT = 1.0
"""Generous for a shared CI machine: the worst inputs take milliseconds."""
PYTHON_PEAK_BYTES = 48 * 2**20
VERDICT_BYTES = 256 * 1024

FUZZ = settings(
    max_examples=250,
    deadline=timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**18, max_value=10**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", " ", "1", "64490", "2025-02-30", "M54.2", "-1", "1e999", "x" * 200])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=24,
)


def check(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> VerdictEvent | Unreadable:
    """Judge `raw` and assert what any input must give; return the result for further checks."""
    table = default_table()
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = judge_raw(raw, table, now=NOW, limits=limits)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < SECONDS_PER_INPUT
    assert peak < PYTHON_PEAK_BYTES
    if isinstance(result, Unreadable):
        assert result.reason in UNREADABLE_REASONS
        assert result.detail
        return result
    assert isinstance(result, VerdictEvent)
    assert len(result.findings) <= limits.max_findings
    text = result.model_dump_json()
    assert len(text) < VERDICT_BYTES
    assert VerdictEvent.model_validate_json(text) == result
    assert (result.verdict == "flagged") == any(f.severity == "error" for f in result.findings)
    return result


@FUZZ
@given(st.binary(max_size=4096))
def test_any_bytes_give_a_verdict_or_a_dead_letter_reason(raw: bytes) -> None:
    check(raw)


@FUZZ
@given(json_values)
def test_any_json_gives_a_verdict_or_a_dead_letter_reason(value: object) -> None:
    check(json.dumps(value).encode())


def _paths(node: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every place in a JSON document, the document itself first."""
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated_samples(draw: st.DrawFn) -> tuple[bytes, str]:
    """A sample claim changed in one place; also the sample's member_id, which must not leak."""
    event: Any = json.loads(json.dumps(draw(st.sampled_from(SAMPLES))))
    member_id = event["claim"]["patient"]["member_id"]
    path = draw(st.sampled_from(_paths(event)[1:]))
    *parents, last = path
    holder = event
    for part in parents:
        holder = holder[part]
    how = draw(st.sampled_from(["replace", "drop", "multiply", "cut", "byte"]))
    if how == "replace":
        holder[last] = draw(json_values)
    elif how == "drop":
        del holder[last]
    elif how == "multiply":  # a list item repeated (lines, codes), or a value made a list
        copies = [holder[last]] * draw(st.integers(min_value=0, max_value=3000))
        if isinstance(holder, list) and isinstance(last, int):
            holder[last : last + 1] = copies
        else:
            holder[last] = copies
    raw = json.dumps(event).encode()
    if how == "cut":
        raw = raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
    elif how == "byte":
        at = draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
    return raw, member_id


@FUZZ
@given(mutated_samples())
def test_mutated_sample_claims_give_a_verdict_or_a_dead_letter_reason(
    case: tuple[bytes, str],
) -> None:
    raw, member_id = case
    result = check(raw)
    shown = result.detail if isinstance(result, Unreadable) else result.model_dump_json()
    assert member_id not in shown


@FUZZ
@given(mutated_samples())
def test_mutated_sample_claims_stay_within_tight_limits(case: tuple[bytes, str]) -> None:
    raw, _ = case
    result = check(raw, TIGHT)
    if isinstance(result, VerdictEvent):
        assert len(result.claim_id) <= TIGHT.max_string_length
