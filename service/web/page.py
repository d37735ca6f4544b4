"""The what-if page's files and sample claims, package data read when the app is built.

The page is one static HTML file with a small script and style sheet (`static/`), served from
memory with a strict Content-Security-Policy: no inline script, nothing from another origin.
The samples are `samples/claims.jsonl` of the repository, shipped in the package as
`samples.jsonl` (a test keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Final

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.web.models import Sample

__all__ = ["PAGE", "STATIC_PREFIX", "page_routes", "sample_claims"]

PAGE: Final = "/"
STATIC_PREFIX: Final = "/static/"
_INDEX: Final = "index.html"

_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _static_files() -> dict[str, bytes]:
    static = files("service.web") / "static"
    return {f.name: f.read_bytes() for f in static.iterdir() if f.is_file()}


def _serving(body: bytes, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return Response(body, media_type=media_type, headers=_HEADERS)

    return serve


def page_routes() -> list[Route]:
    """`/` (the page) and `/static/<name>` for each other file, GET only."""
    routes = []
    for name, body in sorted(_static_files().items()):
        suffix = name[name.rfind(".") :]
        path = PAGE if name == _INDEX else STATIC_PREFIX + name
        media_type = _TYPES.get(suffix, "application/octet-stream")
        routes.append(Route(path, _serving(body, media_type), methods=["GET"]))
    return routes


def sample_claims() -> tuple[Sample, ...]:
    """The sample claim.submitted events, labelled by claim id, payer and procedure codes."""
    out = []
    text = (files("service.web") / "samples.jsonl").read_bytes()
    for line in text.splitlines():
        if not line.strip():
            continue
        event = orjson.loads(line)
        claim = event.get("claim") if isinstance(event, dict) else None
        if not isinstance(claim, dict) or not isinstance(claim.get("claim_id"), str):
            continue
        lines = claim.get("service_lines")
        codes = [
            str(x.get("procedure_code"))
            for x in (lines if isinstance(lines, list) else [])
            if isinstance(x, dict)
        ]
        label = f"{claim['claim_id']} ({claim.get('payer_id', '?')}: {', '.join(codes)})"
        out.append(Sample(claim_id=claim["claim_id"], label=label, event=event))
    return tuple(out)
