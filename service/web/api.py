"""The HTTP API and the what-if page: `create_api(table, settings, metrics)` builds the app.

Routes (their models in `service.web.models`, the document in `schemas/openapi.json`):

* `POST /v1/claims:validate`: one claim.submitted event or a bare claim -> the verdict the
  Kafka path publishes for it (200); a claim that breaks the schema -> 422 with its
  CLAIM_MALFORMED findings; unreadable input -> 400;
* `POST /v1/claims:validate-batch`: a JSON array or JSON Lines -> one result per claim;
* `POST /v1/claims:validate-x12`: an 837P text -> the events `claims-validator ingest` makes of
  it, judged like a batch, with the intake's errors (501 without the `x12` extra);
* `GET /v1/rules` (the catalogue), `GET /v1/rule-table`, `GET /v1/samples`;
* `GET /` and `/static/*`: the what-if page, package data read once when the app is built.

Limits are settings (`settings.api`): body size (413, checked on Content-Length and while
reading), claims per batch (413, counted before any is judged), body arrival time (408), and
batch judging time (503; judging yields to the event loop between chunks of claims, because
the Kafka consumer shares that loop). Bodies are never logged: each request is one
`http_request` line with the route, status, claim ids and rule ids (`service.web.observed`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import FastAPI, Request, Response
from pydantic import TypeAdapter
from starlette.routing import BaseRoute, Route

from service.decode import Unreadable
from service.limits import Limits
from service.metrics import ServiceMetrics
from service.models.events import VerdictEvent
from service.settings import ApiSettings, Settings
from service.web.catalogue import RuleTable, rule_entries, table_info
from service.web.judging import (
    BatchRefused,
    Judged,
    batch_item,
    batch_result,
    ids_of,
    is_malformed,
    judge_claim,
    malformed_error,
    split_batch,
    unreadable_error,
)
from service.web.models import (
    BatchResult,
    ErrorBody,
    RuleEntry,
    RuleTableInfo,
    Sample,
    X12Result,
)
from service.web.observed import QUIET_PATHS, RequestLog, note_claims
from service.web.openapi import (
    API_DESCRIPTION,
    API_TITLE,
    API_VERSION,
    DocumentedApi,
    claim_body,
    x12_body,
)
from service.web.page import page_routes, sample_claims
from service.web.x12_intake import intake_x12, not_installed, x12_result

__all__ = [
    "RULES",
    "RULE_TABLE",
    "SAMPLES",
    "VALIDATE",
    "VALIDATE_BATCH",
    "VALIDATE_X12",
    "ApiError",
    "api_paths",
    "create_api",
]

VALIDATE: Final = "/v1/claims:validate"
VALIDATE_BATCH: Final = "/v1/claims:validate-batch"
VALIDATE_X12: Final = "/v1/claims:validate-x12"
RULES: Final = "/v1/rules"
RULE_TABLE: Final = "/v1/rule-table"
SAMPLES: Final = "/v1/samples"
OPENAPI: Final = "/openapi.json"

JUDGE_CHUNK: Final = 50
"""Claims judged between two yields to the event loop (and two looks at the deadline)."""

_JSON: Final = "application/json"
_verdict_json = VerdictEvent.__pydantic_serializer__.to_json
"""The bytes the Kafka path publishes for a verdict (`service.routing` uses the same)."""


class ApiError(Exception):
    """A request answered with an `ErrorBody` and `status`."""

    def __init__(self, status: int, body: ErrorBody) -> None:
        super().__init__(body.detail)
        self.status = status
        self.body = body


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_api(
    table: RuleTable,
    settings: Settings,
    metrics: ServiceMetrics,
    *,
    clock: Callable[[], datetime] = _utc_now,
) -> FastAPI:
    """The API and page for `table`, limited by `settings.api`, counted in `metrics`."""
    limits = settings.api
    claim_limits = settings.limits.limits()
    api = DocumentedApi(
        title=API_TITLE,
        version=API_VERSION,
        description=API_DESCRIPTION,
        # FastAPI's /docs and /redoc load their scripts from a CDN: nothing is fetched at run
        # time here, so only the document itself is served.
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI,
    )
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorBody, "description": "Not JSON, not an object, or no claim_id."},
        408: {"model": ErrorBody, "description": "The body did not arrive in time."},
        413: {"model": ErrorBody, "description": "The body or the batch is too large."},
    }

    @api.post(
        VALIDATE,
        summary="Judge one claim",
        response_class=Response,
        responses={
            200: {"model": VerdictEvent, "description": "The verdict the Kafka path publishes."},
            **errors,
            422: {
                "model": ErrorBody,
                "description": "The claim breaks the schema: its CLAIM_MALFORMED findings.",
            },
        },
        openapi_extra={"requestBody": claim_body(batch=False)},
    )
    async def validate(request: Request) -> Response:
        raw = await _read_body(request, limits)
        judged = judge_claim(raw, table, now=clock(), limits=claim_limits)
        note_claims(request, ids_of([judged]))
        if isinstance(judged, Unreadable):
            raise ApiError(400, unreadable_error(judged))
        if is_malformed(judged):
            raise ApiError(422, malformed_error(judged))
        return Response(_verdict_json(judged), media_type=_JSON)

    @api.post(
        VALIDATE_BATCH,
        summary="Judge many claims",
        response_class=Response,
        responses={
            200: {"model": BatchResult, "description": "One result per claim, in order."},
            **errors,
            503: {"model": ErrorBody, "description": "Judging took too long: send fewer."},
        },
        openapi_extra={"requestBody": claim_body(batch=True)},
    )
    async def validate_batch(request: Request) -> Response:
        raw = await _read_body(request, limits)
        try:
            items = split_batch(raw, limits.max_batch_claims)
        except BatchRefused as exc:
            status = 413 if exc.error.error == "too-many-claims" else 400
            raise ApiError(status, exc.error) from None
        judged = await _judge_all(
            [r for _, r in items], table, clock(), limits.judge_timeout_s, claim_limits
        )
        note_claims(request, ids_of(judged))
        result = batch_result(
            [batch_item(index, j) for (index, _), j in zip(items, judged, strict=True)],
            table.version,
        )
        return Response(result.model_dump_json(), media_type=_JSON)

    @api.post(
        VALIDATE_X12,
        summary="Judge the claims of an 837P file",
        response_class=Response,
        responses={
            200: {
                "model": X12Result,
                "description": "One result per claim the intake read, and its errors.",
            },
            408: errors[408],
            413: errors[413],
            501: {"model": ErrorBody, "description": "pyx12 (the x12 extra) is not installed."},
            503: {"model": ErrorBody, "description": "Judging took too long: send fewer."},
        },
        openapi_extra={"requestBody": x12_body()},
    )
    async def validate_x12(request: Request) -> Response:
        missing = not_installed()
        if missing is not None:
            raise ApiError(501, missing)
        raw = await _read_body(request, limits)
        # pyx12 is plain Python: a thread lets the Kafka consumer's loop run meanwhile.
        emitted, problems = await asyncio.to_thread(intake_x12, raw)
        if len(emitted) > limits.max_batch_claims:
            raise ApiError(
                413,
                ErrorBody(
                    error="too-many-claims",
                    detail=f"the file has {len(emitted)} claims; at most "
                    f"{limits.max_batch_claims} are judged per request (api.max_batch_claims): "
                    "split it",
                ),
            )
        judged = await _judge_all(
            [e.event_json for e in emitted], table, clock(), limits.judge_timeout_s, claim_limits
        )
        note_claims(request, ids_of(judged))
        result = x12_result(emitted, judged, problems, table.version)
        return Response(result.model_dump_json(), media_type=_JSON)

    catalogue = rule_entries(table)
    rules_json = TypeAdapter(tuple[RuleEntry, ...])

    @api.get(
        RULES,
        summary="The rule catalogue",
        response_class=Response,
        responses={200: {"model": list[RuleEntry], "description": "Rules by family and id."}},
    )
    async def rules(q: str | None = None, family: str | None = None) -> Response:
        """`q`: words every listed rule contains (id, meaning, what to do or source, any
        case); `family`: only that family."""
        chosen = [r for r in catalogue if _matches(r, q, family)]
        return Response(rules_json.dump_json(tuple(chosen)), media_type=_JSON)

    info = table_info(table).model_dump_json()

    @api.get(
        RULE_TABLE,
        summary="The rule table being applied",
        response_class=Response,
        responses={200: {"model": RuleTableInfo, "description": "Version, digest, sources."}},
    )
    async def rule_table() -> Response:
        return Response(info, media_type=_JSON)

    samples = TypeAdapter(tuple[Sample, ...]).dump_json(sample_claims())

    @api.get(
        SAMPLES,
        summary="Sample claims to start from",
        response_class=Response,
        responses={200: {"model": list[Sample], "description": "Made-up claims, no patient."}},
    )
    async def sample_list() -> Response:
        return Response(samples, media_type=_JSON)

    api.router.routes.extend(page_routes())

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return Response(exc.body.model_dump_json(), status_code=exc.status, media_type=_JSON)

    api.add_exception_handler(ApiError, refused)
    api.add_middleware(
        RequestLog, metrics=metrics, routes=frozenset(api_paths(api)) - QUIET_PATHS
    )
    return api


def api_paths(api: FastAPI) -> list[str]:
    """Every path `api` answers (they are all fixed: no path parameters)."""
    return [r.path for r in _routes(api.routes)]


def _routes(routes: Sequence[BaseRoute]) -> list[Route]:
    return [r for r in routes if isinstance(r, Route)]


async def _read_body(request: Request, limits: ApiSettings) -> bytes:
    """The request body, refused with 413 past `max_body_bytes` and 408 past `body_timeout_s`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise ApiError(413, _too_large(limits))
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise ApiError(413, _too_large(limits))
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(
            408,
            ErrorBody(
                error="body-timeout",
                detail=f"the request body did not arrive within {limits.body_timeout_s} s "
                "(api.body_timeout_s)",
            ),
        ) from None
    return b"".join(chunks)


def _too_large(limits: ApiSettings) -> ErrorBody:
    return ErrorBody(
        error="body-too-large",
        detail=f"the request body is over {limits.max_body_bytes} bytes (api.max_body_bytes); "
        "send fewer claims per request",
    )


async def _judge_all(
    raws: Sequence[bytes], table: RuleTable, now: datetime, timeout_s: float, claim_limits: Limits
) -> list[Judged]:
    judged: list[Judged] = []
    try:
        async with asyncio.timeout(timeout_s):
            for n, raw in enumerate(raws, 1):
                judged.append(judge_claim(raw, table, now=now, limits=claim_limits))
                if n % JUDGE_CHUNK == 0:
                    await asyncio.sleep(0)
    except TimeoutError:
        raise ApiError(
            503,
            ErrorBody(
                error="judge-timeout",
                detail=f"judging the batch took longer than {timeout_s} s "
                f"(api.judge_timeout_s) after {len(judged)} claims; send fewer per request",
            ),
        ) from None
    return judged


def _matches(rule: RuleEntry, q: str | None, family: str | None) -> bool:
    if family and rule.family != family:
        return False
    if not q:
        return True
    text = " ".join(
        (rule.rule_id, rule.family, rule.meaning, rule.what_to_do, rule.source)
    ).casefold()
    return all(word in text for word in q.casefold().split())
