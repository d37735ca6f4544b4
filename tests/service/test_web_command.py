"""`claims-validator web`: the API and page alone, no Kafka; probes, metrics, a clean SIGTERM."""

from __future__ import annotations

import urllib.request

import orjson

from service.exitcodes import ExitCode
from tests.web_process import web_process


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (http on loopback)
        return int(answer.status), answer.read()


def test_the_web_command_serves_without_kafka_and_stops_cleanly_on_sigterm() -> None:
    with web_process() as web:
        live = _get(web.url + "health/live")
        ready = _get(web.url + "health/ready")
        page = _get(web.url)
        request = urllib.request.Request(  # noqa: S310
            web.url + "v1/claims:validate",
            data=b'{"claim_id": "WEB-1"}',
            headers={"Content-Type": "application/json"},
        )
        try:
            urllib.request.urlopen(request, timeout=10)  # noqa: S310
            raise AssertionError("a claim with no lines must be refused")
        except urllib.error.HTTPError as refused:
            status, body = refused.code, orjson.loads(refused.read())
        metrics = _get(web.url + "metrics")[1].decode()
        code = web.stop()

    assert ExitCode.OK == code
    assert (200, {"status": "alive"}) == (live[0], orjson.loads(live[1]))
    assert (200, "ready") == (ready[0], orjson.loads(ready[1])["status"])
    assert 200 == page[0]
    assert b"<h1>claims-validator" in page[1]
    assert (422, "claim-malformed") == (status, body["error"])
    assert (
        'claims_validator_http_requests_total{route="/v1/claims:validate",status="422"} 1.0'
        in metrics
    )
    events = [line["event"] for line in web.lines]
    assert "web_stopped" in events
    assert not [e for e in events if e == "not-json"], web.lines
    requests = [line for line in web.lines if line["event"] == "http_request"]
    assert [("/", 200, []), ("/v1/claims:validate", 422, ["WEB-1"])] == [
        (line["route"], line["status"], line["claim_ids"]) for line in requests
    ], "one line per request; probes and scrapes are not logged"
