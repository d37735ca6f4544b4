"""The operable side of the service process: HTTP endpoints on uvicorn, and optional tracing.

`http_routes()` are FastStream ASGI handlers (`faststream.asgi.get`) mounted on the
service's `AsgiFastStream` app:

* `/health/live`: 200 while the event loop runs (the server runs on that same loop, so a
  blocked or dead loop answers nothing and the probe fails);
* `/health/ready`: 200 or 503 with a JSON body naming each check (`service.health`);
* `/metrics`: the app's Prometheus registry (`service.metrics`), consumer lag refreshed first.

`HttpServer` runs uvicorn inside the running event loop, not in a thread or another process,
with uvicorn's lifespan off (the app is started and stopped by `service.app.serve`, which
keeps its SIGTERM handling: uvicorn installs no signal handlers here) and its logs going
through the service's JSON logging. It binds its socket itself, so a port in use fails the
start-up with a clear error, and port 0 picks a free port (tests).

`telemetry_middlewares()` imports OpenTelemetry only when tracing is switched on, so the
service runs without the `otel` extra installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Generator, Sequence
from typing import Any, Final

import orjson
import structlog
import uvicorn
from faststream.asgi import AsgiResponse, get
from faststream.asgi.types import ASGIApp, Scope
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.health import Readiness
from service.metrics import ServiceMetrics
from service.settings import HttpSettings, TracingSettings

__all__ = [
    "HEALTH_LIVE",
    "HEALTH_READY",
    "METRICS",
    "HttpServer",
    "TracingUnavailable",
    "http_routes",
    "telemetry_middlewares",
]

HEALTH_LIVE: Final = "/health/live"
HEALTH_READY: Final = "/health/ready"
METRICS: Final = "/metrics"

STOP_TIMEOUT_S: Final = 2.0
"""Bound on closing the HTTP server after the consumer has stopped."""
START_TIMEOUT_S: Final = 5.0

log = structlog.get_logger("claims_validator.http")

_JSON: Final = {"Content-Type": "application/json"}


def _json(body: Any, status: int) -> AsgiResponse:
    return AsgiResponse(orjson.dumps(body), status, _JSON)


def http_routes(
    metrics: ServiceMetrics,
    readiness: Readiness,
    liveness: Callable[[], str | None] = lambda: None,
) -> list[tuple[str, ASGIApp]]:
    """The service's HTTP endpoints; none of them is part of the AsyncAPI document.

    `liveness()` is why the process is not live (the event loop was blocked), or None."""

    @get(include_in_schema=False)
    async def live(scope: Scope) -> AsgiResponse:
        problem = liveness()
        if problem is not None:
            return _json({"status": "not live", "problem": problem}, 503)
        return _json({"status": "alive"}, 200)

    @get(include_in_schema=False)
    async def ready(scope: Scope) -> AsgiResponse:
        report = await readiness.report()
        return _json(report.body(), 200 if report.ready else 503)

    @get(include_in_schema=False)
    async def scrape(scope: Scope) -> AsgiResponse:
        await metrics.consumer_lag.refresh()
        return AsgiResponse(
            generate_latest(metrics.registry), 200, {"Content-Type": CONTENT_TYPE_LATEST}
        )

    return [(HEALTH_LIVE, live), (HEALTH_READY, ready), (METRICS, scrape)]


class _HeaderTimeoutH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request headers do not arrive
    within `header_timeout_s` (uvicorn only times out idle keep-alive connections), so a slow
    or stuck client cannot hold connections open."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def _await_headers(self) -> None:
        self._cycle_before = self.cycle
        self._header_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout_s, self._headers_late
        )

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None and self.cycle is not self._cycle_before:
            self._header_timer.cancel()
            self._header_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._header_timer is None and not self.transport.is_closing():
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def _protocol(header_timeout_s: float) -> type[H11Protocol]:
    return type(
        "HeaderTimeoutH11", (_HeaderTimeoutH11,), {"header_timeout_s": header_timeout_s}
    )


class _LoopServer(uvicorn.Server):
    """uvicorn without signal handlers of its own: SIGTERM belongs to `service.app.serve`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


class HttpServer:
    """uvicorn serving `app` on `settings.host:settings.port` in the running event loop."""

    def __init__(self, app: ASGIApp, settings: HttpSettings) -> None:
        self._app = app
        self._settings = settings
        self._server: _LoopServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None
        """The bound port (the chosen one when settings.port is 0)."""

    async def start(self) -> None:
        """Bind and serve; raise OSError when the address cannot be bound."""
        sock = _bind(self._settings.host, self._settings.port)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
            http=_protocol(self._settings.header_timeout_s),
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=1,
        )
        server = self._server = _LoopServer(config)
        task = self._task = asyncio.create_task(server.serve(sockets=[sock]))
        async with asyncio.timeout(START_TIMEOUT_S):
            while not server.started:
                if task.done():
                    task.result()  # raises what failed
                    raise OSError("the HTTP server stopped while starting")
                await asyncio.sleep(0.01)
        log.info(
            "http_started",
            host=self._settings.host,
            port=self.port,
            paths=[HEALTH_LIVE, HEALTH_READY, METRICS],
        )

    async def stop(self) -> None:
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await task
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            log.warning("http_stop_timed_out", timeout_s=STOP_TIMEOUT_S)
        except Exception as exc:  # stopping anyway; the consumer side already finished
            log.warning("http_stop_failed", error=type(exc).__name__)


class TracingUnavailable(RuntimeError):
    """Tracing is switched on but OpenTelemetry is not installed."""


def telemetry_middlewares(
    tracing: TracingSettings,
) -> tuple[Sequence[Any], Callable[[], None] | None]:
    """FastStream's `KafkaTelemetryMiddleware` when tracing is on, and a flush-and-close hook
    for the tracer provider made here (only with `otlp_endpoint`); nothing when it is off."""
    if not tracing.enabled:
        return (), None
    try:
        from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
    except ImportError as exc:
        raise TracingUnavailable(
            "CLAIMS_TRACING__ENABLED=true needs OpenTelemetry: "
            "pip install 'claims-validator[otel]'"
        ) from exc
    if tracing.otlp_endpoint is None:
        # The globally configured provider (e.g. `opentelemetry-instrument`), else a no-op.
        return (KafkaTelemetryMiddleware(),), None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise TracingUnavailable(
            "CLAIMS_TRACING__OTLP_ENDPOINT needs the OpenTelemetry SDK and OTLP exporter: "
            "pip install 'claims-validator[otel]'"
        ) from exc
    provider = TracerProvider(resource=Resource.create({"service.name": tracing.service_name}))
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=tracing.otlp_endpoint, timeout=2),
            export_timeout_millis=2_000,
        )
    )
    return (KafkaTelemetryMiddleware(tracer_provider=provider),), provider.shutdown
