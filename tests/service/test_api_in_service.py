"""The API on the Kafka service's own port: beside /metrics and the probes, or switched off."""

from __future__ import annotations

import asyncio

import orjson

from service.app import create_app
from service.observability import HttpServer
from service.ruletable.compiled import RuleTable
from service.settings import ApiSettings, HttpSettings, Settings
from tests.service.asgi import call
from tests.service.claims import FLAGGED_CODES, claim_event, encode
from tests.service.fakes import RecordingProducer
from tests.service.test_metrics import running


async def test_the_service_app_answers_the_api_the_page_and_its_own_endpoints(
    settings: Settings, table: RuleTable, producer: RecordingProducer
) -> None:
    async with running(settings, table, producer) as (app, _):
        verdict = await call(app, "POST", "/v1/claims:validate", encode(claim_event("S-1")))
        page = await call(app, "GET", "/")
        live = await call(app, "GET", "/health/live")
        unknown = await call(app, "GET", "/v1/nope")
        scrape = await call(app, "GET", "/metrics")

    assert (200, "accepted") == (verdict.status, verdict.json()["verdict"])
    assert 200 == page.status
    assert (200, {"status": "alive"}) == (live.status, live.json())
    assert 404 == unknown.status
    assert (
        b'claims_validator_http_requests_total{route="/v1/claims:validate",status="200"} 1.0'
        in scrape.body
    )
    assert 0 == producer.sends, "judging over HTTP publishes nothing"


async def test_the_api_can_be_switched_off_leaving_the_probes(
    table: RuleTable, producer: RecordingProducer
) -> None:
    settings = Settings(api=ApiSettings(enabled=False))
    async with running(settings, table, producer) as (app, _):
        verdict = await call(app, "POST", "/v1/claims:validate", encode(claim_event("S-2")))
        page = await call(app, "GET", "/")
        live = await call(app, "GET", "/health/live")

    assert (404, 404, 200) == (verdict.status, page.status, live.status)


async def test_the_api_answers_over_a_real_socket_on_the_service_port(
    settings: Settings, table: RuleTable, producer: RecordingProducer
) -> None:
    app = create_app(settings, table=table, producer=producer)
    server = HttpServer(app, HttpSettings(host="127.0.0.1", port=0))
    await server.start()
    try:
        assert server.port
        body = encode(claim_event("S-3", FLAGGED_CODES))
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /v1/claims:validate HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        raw = await reader.read()
        writer.close()
    finally:
        await server.stop()

    head, _, content = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    verdict = orjson.loads(content)
    assert ("S-3", "flagged") == (verdict["claim_id"], verdict["verdict"])
