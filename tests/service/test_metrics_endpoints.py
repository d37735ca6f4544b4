"""The HTTP side: readiness decisions, the three endpoints, uvicorn in the loop, tracing switch.

Readiness is decided from plain callables, so its tests hand in fakes (a ping that counts its
calls, a clock the test moves); the endpoints are called through the app's ASGI interface and,
once, over a real socket served by `HttpServer`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import orjson
import pytest
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from structlog.testing import capture_logs

from service.app import create_app
from service.exitcodes import ExitCode
from service.health import BASE_CHECKS, CHECKS, Readiness
from service.observability import HttpServer, telemetry_middlewares
from service.ruletable.compiled import RuleTable
from service.serving import serve
from service.settings import HttpSettings, Settings, TracingSettings
from tests.service.fakes import RecordingProducer
from tests.service.test_metrics import asgi_get, running

# ------------------------------------------------------------------ readiness ----


class FakePing:
    """The broker: answers `answer` after `delay_s`, counting the pings."""

    def __init__(self, answer: bool = True, delay_s: float = 0.0) -> None:
        self.answer = answer
        self.delay_s = delay_s
        self.calls = 0

    async def __call__(self, timeout_s: float) -> bool:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        return self.answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def readiness(
    ping: Callable[[float], object] | None = None,
    *,
    assigned: int | None = 3,
    version: str | None = "aoc-2026q2",
    clock: Clock | None = None,
    timeout_s: float = 1.0,
) -> Readiness:
    return Readiness(
        ping=ping or FakePing(),  # type: ignore[arg-type]
        assigned_partitions=lambda: assigned,
        rule_table_version=lambda: version,
        ping_timeout_s=timeout_s,
        ping_cache_s=2.0,
        clock=clock or Clock(),
    )


async def test_ready_when_every_check_passes() -> None:
    report = await readiness().report()

    assert report.ready
    assert {"status": "ready", "failed": [], "checks": dict.fromkeys(BASE_CHECKS, "ok")} == (
        report.body()
    )


@pytest.mark.parametrize(
    ("kwargs", "failed", "why"),
    [
        ({"assigned": None}, "partitions", "consumer not running"),
        ({"assigned": 0}, "partitions", "no partition assigned"),
        ({"version": None}, "rule_table", "not loaded"),
        ({"ping": FakePing(answer=False)}, "broker", "no answer within 1 s"),
    ],
)
async def test_not_ready_names_the_failed_check(
    kwargs: dict[str, object], failed: str, why: str
) -> None:
    report = await readiness(**kwargs).report()  # type: ignore[arg-type]

    assert not report.ready
    assert [failed] == report.body()["failed"]
    assert why == report.checks[failed]
    assert "not ready" == report.body()["status"]


async def test_a_ping_that_raises_or_hangs_is_no_answer() -> None:
    async def raising(timeout_s: float) -> bool:
        raise ConnectionError("broker gone")

    hanging = FakePing(delay_s=60)

    assert ["broker"] == (await readiness(raising).report()).failed
    started = asyncio.get_running_loop().time()
    assert ["broker"] == (await readiness(hanging, timeout_s=0.05).report()).failed
    assert asyncio.get_running_loop().time() - started < 2


async def test_the_broker_answer_is_reused_for_the_cache_period() -> None:
    ping, clock = FakePing(), Clock()
    ready = readiness(ping, clock=clock)

    await ready.report()
    clock.now += 1.9
    await ready.report()
    assert 1 == ping.calls

    clock.now += 0.2
    ping.answer = False
    assert ["broker"] == (await ready.report()).failed
    assert 2 == ping.calls


async def test_concurrent_probes_share_one_ping() -> None:
    ping = FakePing(delay_s=0.05)
    ready = readiness(ping)

    reports = await asyncio.gather(*(ready.report() for _ in range(5)))

    assert all(r.ready for r in reports)
    assert 1 == ping.calls


async def test_not_ready_once_shutdown_has_begun() -> None:
    ready = readiness()
    ready.stopping()

    report = await ready.report()

    assert ["serving"] == report.failed
    assert "shutting down" == report.checks["serving"]


# ------------------------------------------------------------------ endpoints ----


async def test_live_answers_and_ready_says_why_not_in_memory(
    settings: Settings, table: RuleTable, producer: RecordingProducer
) -> None:
    """Under TestKafkaBroker no aiokafka consumer runs, so the app is alive but not ready."""
    async with running(settings, table, producer) as (app, _):
        live = await asgi_get(app, "/health/live")
        ready = await asgi_get(app, "/health/ready")
        wrong_method = await asgi_get(app, "/health/live", method="POST")
        unknown = await asgi_get(app, "/nope")

    assert (200, {"status": "alive"}) == (live[0], orjson.loads(live[2]))
    status, headers, body = ready
    assert 503 == status
    assert "application/json" == headers["content-type"]
    report = orjson.loads(body)
    assert "partitions" in report["failed"]
    assert "consumer not running" == report["checks"]["partitions"]
    assert list(CHECKS) == list(report["checks"])
    assert 405 == wrong_method[0]
    assert 404 == unknown[0]


async def test_the_app_serves_over_http_on_uvicorn_in_the_running_loop(
    settings: Settings, table: RuleTable, producer: RecordingProducer
) -> None:
    app = create_app(settings, table=table, producer=producer)
    server = HttpServer(app, HttpSettings(host="127.0.0.1", port=0))
    await server.start()
    try:
        assert server.port
        status_line, body = await _http_get(server.port, "/health/live")
        assert b"HTTP/1.1 200 OK" == status_line
        assert {"status": "alive"} == orjson.loads(body)
        status_line, body = await _http_get(server.port, "/metrics")
        assert b"HTTP/1.1 200 OK" == status_line
        assert b"claims_validator_rule_table_info{" in body
    finally:
        await server.stop()
    with pytest.raises(ConnectionRefusedError):
        await _http_get(server.port, "/health/live")


async def _http_get(port: int, path: str) -> tuple[bytes, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], body


async def test_a_taken_port_stops_the_start_before_the_broker_is_touched(
    table: RuleTable, producer: RecordingProducer
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        settings = Settings(http=HttpSettings(host="127.0.0.1", port=port))
        app = create_app(settings, table=table, producer=producer)
        with capture_logs() as logs:
            code = await serve(app, settings)

    assert ExitCode.INPUT == code
    assert not producer.started  # the app's start-up hooks never ran
    [failed] = [e for e in logs if e["event"] == "startup_failed"]
    assert port == failed["http_port"]


# ------------------------------------------------------------------ tracing ----


def test_tracing_is_off_by_default_and_adds_the_middleware_when_switched_on(
    table: RuleTable,
) -> None:
    off = create_app(Settings(), table=table)
    on = create_app(Settings(tracing=TracingSettings(enabled=True)), table=table)

    assert off.broker is not None
    assert on.broker is not None
    assert not [m for m in off.broker.middlewares if isinstance(m, KafkaTelemetryMiddleware)]
    assert 1 == len([m for m in on.broker.middlewares if isinstance(m, KafkaTelemetryMiddleware)])
    for app in (off, on):
        assert app.broker is not None
        assert [KafkaPrometheusMiddleware] == [
            type(m) for m in app.broker.middlewares if isinstance(m, KafkaPrometheusMiddleware)
        ]


def test_tracing_to_an_otlp_endpoint_builds_its_own_provider_and_closes_it() -> None:
    middlewares, close = telemetry_middlewares(
        TracingSettings(enabled=True, otlp_endpoint="http://127.0.0.1:9/v1/traces")
    )

    assert [KafkaTelemetryMiddleware] == [type(m) for m in middlewares]
    assert close is not None
    close()  # flushes nothing (no span was recorded) and returns


def test_no_tracing_no_middleware_no_hook() -> None:
    assert ((), None) == telemetry_middlewares(TracingSettings())
