"""`claims-validator web`: the HTTP API and the what-if page alone, without Kafka.

The same app as on the service's port (`service.web.api.create_api`), plus the probes and
/metrics a deployment expects, served by the service's `HttpServer` (uvicorn in the running
loop, with its header timeout) until SIGTERM or SIGINT. Ready as soon as it listens: the rule
table was loaded before, and nothing else is needed.
"""

from __future__ import annotations

import asyncio
import signal

import structlog
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.exitcodes import ExitCode
from service.logs import configure_logging
from service.metrics import ServiceMetrics
from service.observability import HEALTH_LIVE, HEALTH_READY, METRICS, HttpServer
from service.settings import HttpSettings, Settings
from service.web.api import create_api
from service.web.catalogue import load_rule_table

__all__ = ["add_probes", "run_web", "serve_web", "web_app"]

log = structlog.get_logger("claims_validator.web")


def web_app(settings: Settings) -> FastAPI:
    """The API and page for the table `settings` names, with probes and /metrics."""
    table = load_rule_table(settings.rule_table_dir)
    metrics = ServiceMetrics(table)
    api = create_api(table, settings, metrics)
    add_probes(api, metrics)
    return api


def add_probes(api: FastAPI, metrics: ServiceMetrics) -> None:
    """/health/live, /health/ready and /metrics, shaped like the Kafka service's."""

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def ready(request: Request) -> Response:
        return JSONResponse({"status": "ready", "failed": [], "checks": {"rule_table": "ok"}})

    async def scrape(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    api.router.routes.extend(
        Route(path, endpoint, methods=["GET"], include_in_schema=False)
        for path, endpoint in ((HEALTH_LIVE, live), (HEALTH_READY, ready), (METRICS, scrape))
    )


def run_web(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT; the exit code."""
    configure_logging(settings)
    app = web_app(settings)
    return asyncio.run(serve_web(app, settings.http))


async def serve_web(app: FastAPI, http: HttpSettings, stop: asyncio.Event | None = None) -> int:
    """Listen on `http.host:http.port` until a signal (or `stop`, for tests) says stop."""
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = HttpServer(app, http)
    try:
        await server.start()
    except OSError as exc:  # e.g. the port is taken
        log.error(
            "startup_failed",
            error=type(exc).__name__,
            error_detail=f"cannot listen on {http.host}:{http.port}: {exc.strerror or exc}",
            http_host=http.host,
            http_port=http.port,
        )
        await server.stop()
        return ExitCode.INPUT
    host = "127.0.0.1" if http.host in ("0.0.0.0", "::") else http.host  # noqa: S104
    log.info("web_started", url=f"http://{host}:{server.port}/", port=server.port)
    try:
        await stop.wait()
    finally:
        log.info("shutdown_requested")
        await server.stop()
    log.info("web_stopped")
    return ExitCode.OK
