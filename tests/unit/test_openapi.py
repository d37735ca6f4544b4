"""The committed OpenAPI document is what the API generates, and it is true.

True here means: every `$ref` resolves, the request schemas accept the sample claims (as
events and as bare claims) and the response schemas accept what the API really answers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from service.decode import Readable, decode
from service.tables import default_table
from service.verdicts import judge
from service.web.document import OPENAPI_JSON, render_openapi

REPO = Path(__file__).parents[2]
DOC = REPO / "schemas" / OPENAPI_JSON
SAMPLES = REPO / "samples" / "claims.jsonl"


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DOC.read_text())
    return doc


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """`schema` with the document's components beside it, so its `$ref`s resolve."""
    return jsonschema.Draft202012Validator({**schema, "components": _doc()["components"]})


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_committed_openapi_matches_a_fresh_generation() -> None:
    """Regenerate with `claims-validator schemas --out schemas` when the API or models change."""
    assert DOC.read_text() == render_openapi()[OPENAPI_JSON], "schemas/openapi.json drifted"


def test_generation_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_API__MAX_BATCH_CLAIMS", "7")
    monkeypatch.setenv("CLAIMS_HTTP__PORT", "9999")
    assert DOC.read_text() == render_openapi()[OPENAPI_JSON]


def test_the_document_names_every_endpoint_and_every_ref_resolves() -> None:
    doc = _doc()
    assert {
        "/v1/claims:validate": "post",
        "/v1/claims:validate-batch": "post",
        "/v1/claims:validate-x12": "post",
        "/v1/rules": "get",
        "/v1/rule-table": "get",
        "/v1/samples": "get",
    } == {path: next(iter(ops)) for path, ops in doc["paths"].items()}
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in schemas, f"{ref} does not resolve"


def test_the_request_schemas_accept_the_samples_as_events_bare_and_in_batches() -> None:
    paths = _doc()["paths"]
    one = _validator(
        paths["/v1/claims:validate"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]
    )
    many = _validator(
        paths["/v1/claims:validate-batch"]["post"]["requestBody"]["content"][
            "application/json"
        ]["schema"]
    )
    lines = [orjson.loads(line) for line in SAMPLES.read_bytes().splitlines() if line.strip()]
    readable = [e for e in lines if e["claim"]["claim_id"] != "CLM-SAMPLE-014"]
    for event in readable:
        one.validate(event)
        one.validate(event["claim"])
    many.validate(readable)
    assert not one.is_valid({"claim": {"claim_id": "X"}})


def test_the_response_schemas_accept_what_the_api_answers() -> None:
    paths = _doc()["paths"]
    verdict_schema = _validator(
        paths["/v1/claims:validate"]["post"]["responses"]["200"]["content"][
            "application/json"
        ]["schema"]
    )
    error_schema = _validator(
        paths["/v1/claims:validate"]["post"]["responses"]["422"]["content"][
            "application/json"
        ]["schema"]
    )
    table = default_table()
    decoded = decode(SAMPLES.read_bytes().splitlines()[2])
    assert isinstance(decoded, Readable)
    verdict = judge(decoded.event, table, now=datetime(2026, 3, 5, tzinfo=UTC))
    as_json = orjson.loads(verdict.model_dump_json())
    verdict_schema.validate(as_json)
    error_schema.validate(
        {"error": "claim-malformed", "detail": "d", "problems": [], "verdict": as_json}
    )
    assert not error_schema.is_valid({"error": "no-such-error", "detail": "d"})
