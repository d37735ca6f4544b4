"""What the service logs: one line per verdict and per dead letter, and never patient data."""

from __future__ import annotations

import io
import logging
import re
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from structlog.testing import capture_logs

from service.logs import (
    VERDICT_LOGGER,
    configure_logging,
    flush_logs,
    framework_logger,
    log_verdicts,
)
from service.ruletable.compiled import RuleTable
from service.settings import LogSettings, Settings
from tests.service.claims import BIRTH_DATE, FLAGGED_CODES, MEMBER_ID, claim_event, encode
from tests.service.conftest import RunApp

IN = "claims.submitted"
TRUNCATED = b'{"claim": {"claim_id": "C", "patient": {"member_id": "PHI-MEMBER-XYZ", "birth'


async def _traffic(run_app: RunApp) -> None:
    """One accepted, one flagged, one malformed, one unreadable event (each carrying PHI)."""
    malformed = claim_event("CLM-M")
    malformed["claim"]["patient"]["birth_date"] = "not-a-date-PHI"
    async with run_app() as broker:
        await broker.publish(encode(claim_event("CLM-A")), IN, key=b"CLM-A")
        await broker.publish(encode(claim_event("CLM-F", FLAGGED_CODES)), IN, key=b"CLM-F")
        await broker.publish(encode(malformed), IN, key=b"CLM-M")
        await broker.publish(TRUNCATED, IN, key=b"CLM-X")


def _assert_no_patient_data(text: str) -> None:
    for secret in (MEMBER_ID, BIRTH_DATE, "not-a-date-PHI", "service_lines", "patient"):
        assert secret not in text, f"{secret!r} leaked into the logs"


async def test_verdict_lines_carry_the_required_fields(
    run_app: RunApp, table: RuleTable
) -> None:
    """event=verdict with claim_id, verdict, rule_ids, table version, coordinates, duration."""
    with capture_logs() as logs:
        await _traffic(run_app)

    verdicts = [e for e in logs if e["event"] == "verdict"]
    assert ["CLM-A", "CLM-F", "CLM-M"] == [e["claim_id"] for e in verdicts]
    assert ["accepted", "flagged", "flagged"] == [e["verdict"] for e in verdicts]
    assert [[], ["ADDON_WITHOUT_PRIMARY"] * 2, ["CLAIM_MALFORMED"]] == [
        e["rule_ids"] for e in verdicts
    ]
    for e in verdicts:
        assert {"topic": IN, "partition": 0, "offset": 0, "log_level": "info"}.items() <= e.items()
        assert table.version == e["rule_table_version"]
        assert isinstance(e["duration_ms"], float)
        assert e["duration_ms"] >= 0


async def test_dead_letter_line_says_why_and_where_from(run_app: RunApp) -> None:
    with capture_logs() as logs:
        await _traffic(run_app)

    [dead] = [e for e in logs if e["event"] == "dead_lettered"]
    assert {
        "reason": "not-json",
        "topic": IN,
        "partition": 0,
        "offset": 0,
        "published_to": "claims.dead-letter",
        "log_level": "warning",
    }.items() <= dead.items()


async def test_start_up_line_names_the_rule_table_topics_and_group(
    run_app: RunApp, table: RuleTable
) -> None:
    with capture_logs() as logs:
        async with run_app():
            pass

    [started] = [e for e in logs if e["event"] == "service_started"]
    assert (table.version, table.digest, "claims-validator") == (
        started["rule_table_version"],
        started["rule_table_digest"],
        started["group_id"],
    )
    assert "claims.submitted" == started["topics"]["submitted"]


async def test_captured_log_events_contain_no_patient_data_or_payload(run_app: RunApp) -> None:
    with capture_logs() as logs:
        await _traffic(run_app)

    assert len(logs) >= 5
    _assert_no_patient_data("\n".join(repr(e) for e in logs))


async def test_json_lines_on_the_stream_are_json_and_contain_no_patient_data(
    run_app: RunApp,
) -> None:
    """The real pipeline (JSON renderer), our lines and stdlib ones (as FastStream's) alike."""
    out = io.StringIO()
    configure_logging(Settings(log=LogSettings(format="json")), stream=out, cache=False)
    await _traffic(run_app)
    framework_logger().info("FastStream says hi", extra={"topic": IN, "message_id": "5-17"})
    logging.getLogger("aiokafka").warning("Heartbeat failed for group x")

    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    events = [line["event"] for line in lines]
    assert events.count("verdict") == 3
    assert {"service_started", "dead_lettered", "FastStream says hi"} <= set(events)
    stdlib = next(line for line in lines if line["event"] == "FastStream says hi")
    assert {"topic": IN, "message_id": "5-17", "level": "info"}.items() <= stdlib.items()
    assert "aiokafka" == next(line for line in lines if "Heartbeat" in line["event"])["logger"]
    assert all("timestamp" in line for line in lines)
    _assert_no_patient_data(out.getvalue())


def test_exception_tracebacks_are_rendered_without_local_variables() -> None:
    """Locals of a failing frame may hold a claim: JSON tracebacks must not show them."""
    out = io.StringIO()
    configure_logging(Settings(log=LogSettings(format="json")), stream=out, cache=False)
    member_id = MEMBER_ID  # a local the traceback would show if locals were rendered
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger().exception("failed", claim_id="C-1")
        logging.getLogger("faststream").exception("failed too")

    lines: list[dict[str, Any]] = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert ["failed", "failed too"] == [line["event"] for line in lines]
    assert all(line["exception"][0]["exc_type"] == "ValueError" for line in lines)
    assert member_id not in out.getvalue()


def test_console_format_renders_plain_lines() -> None:
    out = io.StringIO()
    configure_logging(Settings(log=LogSettings(format="console")), stream=out, cache=False)
    structlog.get_logger().info("verdict", claim_id="C-9")
    assert "verdict" in out.getvalue()
    assert "claim_id=C-9" in out.getvalue()
    assert not out.getvalue().lstrip().startswith("{")


def test_level_setting_filters_lower_levels() -> None:
    out = io.StringIO()
    configure_logging(Settings(log=LogSettings(format="json", level="WARNING")), stream=out,
                      cache=False)
    structlog.get_logger().info("verdict")
    logging.getLogger("aiokafka").info("chatty")
    structlog.get_logger().warning("publish_retry")
    assert ["publish_retry"] == [orjson.loads(x)["event"] for x in out.getvalue().splitlines()]


# ------------------------------------------------ the verdict line's cost-cutting ----

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
FIELDS = {
    "claim_id": "CLM-7",
    "verdict": "flagged",
    "rule_ids": ["ADDON_WITHOUT_PRIMARY"],
    "rule_table_version": "v-test",
    "event_id": "6f1b7c1e-4a53-4f3c-9d0e-2a7a61c2b6d4",
    "topic": IN,
    "partition": 2,
    "offset": 41,
    "published_to": "claims.flagged",
    "duration_ms": 0.031,
}


class CountingStream(io.StringIO):
    """Counts write() calls: with PYTHONUNBUFFERED (as in the container) each is a syscall."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


def _json_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def test_log_verdicts_writes_the_line_the_verdict_logger_writes() -> None:
    out = io.StringIO()
    configure_logging(Settings(log=LogSettings(format="json")), stream=out, cache=False)
    structlog.get_logger(VERDICT_LOGGER).info("verdict", **FIELDS)
    log_verdicts([FIELDS])
    flush_logs()

    by_logger, batched = _json_lines(out)
    assert list(by_logger) == list(batched)  # same fields, same order
    assert {k: v for k, v in by_logger.items() if k != "timestamp"} == {
        k: v for k, v in batched.items() if k != "timestamp"
    }
    assert {"event": "verdict", "level": "info", **FIELDS}.items() <= batched.items()
    for line in (by_logger, batched):
        assert ISO_UTC.match(line["timestamp"]), line["timestamp"]
        stamped = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
        assert abs((datetime.now(UTC) - stamped).total_seconds()) < 5


def test_log_verdicts_goes_through_the_configured_processors() -> None:
    """capture_logs() swaps the processors: it sees the batched lines like any other."""
    configure_logging(Settings(log=LogSettings(format="json")), stream=io.StringIO(), cache=False)
    with capture_logs() as logs:
        log_verdicts([FIELDS, {**FIELDS, "claim_id": "CLM-8"}])

    assert ["CLM-7", "CLM-8"] == [e["claim_id"] for e in logs]
    assert {("verdict", "info")} == {(e["event"], e["log_level"]) for e in logs}


def test_log_verdicts_honours_the_level_setting() -> None:
    out = io.StringIO()
    configure_logging(
        Settings(log=LogSettings(format="json", level="WARNING")), stream=out, cache=False
    )
    log_verdicts([FIELDS])
    flush_logs()
    assert "" == out.getvalue()


def test_verdict_lines_are_written_once_per_batch_and_in_order_with_other_lines() -> None:
    """Verdict lines wait for flush_logs() (one write for the batch); any other line first
    writes the waiting verdict lines, so the stream keeps the order they were logged in."""
    out = CountingStream()
    configure_logging(Settings(log=LogSettings(format="json")), stream=out, cache=False)
    log_verdicts([{**FIELDS, "claim_id": f"CLM-{i}"} for i in range(3)])
    assert 0 == out.writes

    structlog.get_logger("claims_validator.handler").warning("dead_lettered", reason="not-json")
    log_verdicts([{**FIELDS, "claim_id": "CLM-3"}])
    logging.getLogger("aiokafka").warning("Heartbeat failed for group x")
    structlog.get_logger(VERDICT_LOGGER).info("verdict", **{**FIELDS, "claim_id": "CLM-4"})
    log_verdicts([{**FIELDS, "claim_id": "CLM-5"}])
    writes_before_flush = out.writes
    flush_logs()

    assert writes_before_flush + 1 == out.writes  # CLM-4 and CLM-5 in one write
    lines = _json_lines(out)
    assert [
        "CLM-0",
        "CLM-1",
        "CLM-2",
        "dead_lettered",
        "CLM-3",
        "Heartbeat failed for group x",
        "CLM-4",
        "CLM-5",
    ] == [line.get("claim_id", line["event"]) for line in lines]


# ------------------------------------------------------------------ hygiene ----


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    flush_logs()
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line]


def test_client_protocol_loggers_never_log_below_info_even_at_debug() -> None:
    """At DEBUG the Kafka client logs its requests, SASL authentication with the password
    among them; its loggers stay at INFO whatever the service's level."""
    stream = io.StringIO()
    configure_logging(
        Settings(log=LogSettings(format="json", level="DEBUG")), stream=stream, cache=False
    )
    logging.getLogger("aiokafka.conn").debug("SaslAuthenticate %s", "password=hunter2")
    logging.getLogger("aiokafka.conn").info("connected")
    structlog.get_logger("claims_validator.test").debug("ours_at_debug")

    text = stream.getvalue() + "".join(orjson.dumps(x).decode() for x in _json_lines(stream))
    assert "hunter2" not in text
    events = [line["event"] for line in _json_lines(stream)]
    assert "connected" in events
    assert "ours_at_debug" in events


def test_repeated_client_errors_are_rate_limited_and_the_rest_counted() -> None:
    clock = [0.0]
    stream = io.StringIO()
    configure_logging(Settings(log=LogSettings(format="json")), stream=stream, cache=False)
    handler = logging.getLogger().handlers[0]
    limiter = next(f for f in handler.filters if type(f).__name__ == "_RateLimit")
    limiter._clock = lambda: clock[0]  # type: ignore[attr-defined]
    client = logging.getLogger("aiokafka.consumer.group_coordinator")
    for _ in range(1000):
        client.error("Error sending %s to node %s", "Heartbeat", 1)
    clock[0] = 31.0
    client.error("Error sending %s to node %s", "Heartbeat", 1)

    lines = [x for x in _json_lines(stream) if x.get("logger") == client.name]
    assert 6 == len(lines)  # 5 in the first period, then the first of the next
    assert 995 == lines[-1]["suppressed_before"]


def test_a_commit_refused_by_a_rebalance_is_a_warning_not_critical() -> None:
    from aiokafka.errors import CommitFailedError  # type: ignore[import-untyped]

    stream = io.StringIO()
    configure_logging(Settings(log=LogSettings(format="json")), stream=stream, cache=False)
    try:
        raise CommitFailedError("group rebalanced")
    except CommitFailedError as exc:
        framework_logger().log(logging.CRITICAL, repr(exc), exc_info=exc)

    [line] = _json_lines(stream)
    assert "warning" == line["level"]
    assert line["event"].startswith("commit_refused_by_rebalance (CommitFailedError)")
    assert "exception" not in line
