"""One log line and one count per API or page request, and nothing from its body.

`RequestLog` is plain ASGI middleware around the FastAPI app: it sees the status code the app
sends, and the claim ids and rule ids an endpoint noted with `note_claims()` (in the request's
`state`). The line names the route template, never the raw path or query (a query may hold
anything a user typed), and never a claim's values: claims carry patient data.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, MutableMapping
from typing import Any, Final

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import ServiceMetrics

__all__ = ["OTHER_ROUTE", "QUIET_PATHS", "RequestLog", "note_claims"]

OTHER_ROUTE: Final = "other"
"""The route label of a path the app does not serve (bounded label values)."""
QUIET_PATHS: Final = frozenset({"/health/live", "/health/ready", "/metrics"})
"""Probes and scrapes (`claims-validator web` serves them too): neither logged nor counted."""

log = structlog.get_logger("claims_validator.web")

def note_claims(request: Request, judged: Iterable[tuple[str, tuple[str, ...]]]) -> None:
    """Record (claim id, rule ids) of the claims a request judged, for its log line."""
    claim_ids: list[str] = []
    rule_ids: set[str] = set()
    for claim_id, rules in judged:
        claim_ids.append(claim_id)
        rule_ids.update(rules)
    request.state.claim_ids = claim_ids
    request.state.rule_ids = sorted(rule_ids)


class RequestLog:
    """Counts (`claims_validator_http_requests_total`) and logs every request but probes."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, routes: frozenset[str]) -> None:
        self._app = app
        self._metrics = metrics
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in QUIET_PATHS:
            await self._app(scope, receive, send)
            return
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        status = 500  # what the client gets when the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        started = time.perf_counter()
        try:
            await self._app(scope, receive, sending)
        finally:
            route = scope["path"] if scope["path"] in self._routes else OTHER_ROUTE
            self._metrics.http_request(route, status)
            log.info(
                "http_request",
                method=scope["method"],
                route=route,
                status=status,
                claim_ids=state.get("claim_ids", []),
                rule_ids=state.get("rule_ids", []),
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
