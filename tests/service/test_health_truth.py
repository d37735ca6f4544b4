"""Health that tells the truth: readiness fails while the consumer is out of its group, while
publishing fails past a bound, or while lag waits without progress; liveness fails after the
event loop was blocked; a slow HTTP client cannot hold a connection open; the exit code says
why the service stopped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from faststream.asgi import AsgiResponse, get
from faststream.asgi.types import Scope

from service.app import LIFECYCLE_KEY, create_app
from service.exitcodes import ExitCode
from service.health import OK, LoopWatchdog, StallMonitor
from service.lifecycle import Lifecycle
from service.observability import HttpServer
from service.ruletable.compiled import RuleTable
from service.serving import serve
from service.settings import HttpSettings, Settings
from tests.service.fakes import RecordingProducer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class State:
    in_group = True
    stopped: list[str] = []  # noqa: RUF012  (one instance per test)
    failing_since: float | None = None
    last_progress: float | None = None
    lag = 0


def monitor(state: State, clock: Clock) -> StallMonitor:
    async def refresh() -> None:
        return None

    return StallMonitor(
        in_group=lambda: state.in_group,
        stopped=lambda: state.stopped,
        failing_since=lambda: state.failing_since,
        last_progress=lambda: state.last_progress,
        lag=lambda: state.lag,
        refresh_lag=refresh,
        publish_failing_s=15.0,
        stalled_s=60.0,
        clock=clock,
    )


async def test_each_stall_fails_its_readiness_check_with_a_reason() -> None:
    state, clock = State(), Clock()
    stalls = monitor(state, clock)
    checks = stalls.checks()
    assert {"consumer": OK, "publishing": OK, "progress": OK} == {
        name: await check() for name, check in checks.items()
    }
    assert not stalls.stalled()

    state.in_group = False
    assert "not a member of the consumer group" == await checks["consumer"]()
    state.in_group = True
    state.stopped = ["claims.submitted-1 at offset 7 (UnicodeDecodeError)"]
    assert (await checks["consumer"]()).startswith("stopped at an unreadable record: claims")
    assert stalls.stalled()
    state.stopped = []

    state.failing_since = clock.now
    clock.now += 14.0
    assert OK == await checks["publishing"]()
    clock.now += 1.0
    assert "publishing has been failing for 15 s" == await checks["publishing"]()
    assert stalls.stalled()
    state.failing_since = None

    state.lag, state.last_progress = 40, clock.now
    clock.now += 59.0
    assert OK == await checks["progress"]()
    clock.now += 1.0
    assert "40 records waiting and no batch completed for 60 s" == await checks["progress"]()
    state.lag = 0
    assert OK == await checks["progress"]()  # idle without lag is not a stall


async def test_liveness_fails_for_a_while_after_the_loop_was_blocked() -> None:
    clock = Clock()
    watchdog = LoopWatchdog(5.0, memory_s=30.0, clock=clock)
    watchdog.observe(4.9)
    assert watchdog.problem() is None
    watchdog.observe(8.0)
    assert "the event loop was blocked for 8.0 s (bound 5 s)" == watchdog.problem()
    clock.now += 31.0
    assert watchdog.problem() is None


async def test_the_watchdog_sees_a_real_blocked_loop() -> None:
    import time

    watchdog = LoopWatchdog(0.2, tick_s=0.05)
    await watchdog.start()
    try:
        await asyncio.sleep(0.1)
        time.sleep(0.5)  # noqa: ASYNC251  (the point: a synchronous call blocking the loop)
        await asyncio.sleep(0.1)
        assert (watchdog.problem() or "").startswith("the event loop was blocked for 0.")
    finally:
        await watchdog.stop()


@pytest.fixture
async def http_server() -> AsyncIterator[HttpServer]:
    @get(include_in_schema=False)
    async def hello(scope: Scope) -> AsgiResponse:
        return AsgiResponse(b"hi", 200)

    from faststream.asgi import AsgiFastStream

    app = AsgiFastStream(asgi_routes=[("/hello", hello)])
    server = HttpServer(app, HttpSettings(host="127.0.0.1", port=0, header_timeout_s=0.3))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_client_that_never_finishes_its_headers_is_disconnected(
    http_server: HttpServer,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", http_server.port)
    writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # no blank line: headers unfinished
    await writer.drain()
    assert b"" == await asyncio.wait_for(reader.read(), 3)  # closed by the server
    writer.close()

    reader, writer = await asyncio.open_connection("127.0.0.1", http_server.port)
    writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 3)
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b"hi")
    writer.close()


async def test_the_services_own_reason_to_stop_is_its_exit_code(
    settings: Settings, table: RuleTable
) -> None:
    """serve() wakes on the lifecycle as on SIGTERM, drains, and returns the code it was given.
    (The broker is in memory: FastStream's TestKafkaBroker patches the connection.)"""
    from faststream.kafka import KafkaBroker, TestKafkaBroker

    lifecycle = Lifecycle()
    settings = settings.model_copy(update={"http": HttpSettings(enabled=False)})
    app = create_app(settings, table, producer=RecordingProducer(), lifecycle=lifecycle)
    assert lifecycle is app.context.get(LIFECYCLE_KEY)
    assert isinstance(app.broker, KafkaBroker)
    async with TestKafkaBroker(app.broker):
        served = asyncio.create_task(serve(app, settings))
        await asyncio.sleep(0.2)
        assert not served.done()
        lifecycle.fail(ExitCode.INTERNAL_ERRORS, "test")
        assert ExitCode.INTERNAL_ERRORS == await asyncio.wait_for(served, 10)


async def test_a_batch_cancelled_by_the_shutdown_bound_is_not_a_clean_exit(
    settings: Settings, table: RuleTable
) -> None:
    from faststream.kafka import KafkaBroker, TestKafkaBroker

    lifecycle = Lifecycle()
    settings = settings.model_copy(update={"http": HttpSettings(enabled=False)})
    app = create_app(settings, table, producer=RecordingProducer(), lifecycle=lifecycle)
    assert isinstance(app.broker, KafkaBroker)
    async with TestKafkaBroker(app.broker):
        served = asyncio.create_task(serve(app, settings))
        await asyncio.sleep(0.2)
        lifecycle.batch_started()
        lifecycle.batch_cancelled()  # what the handler records when the bound cancels it
        lifecycle.stop_requested.set()
        assert ExitCode.SHUTDOWN_ABANDONED == await asyncio.wait_for(served, 10)
