"""The committed AsyncAPI document is what FastStream generates from the service, and it is true.

True here means: it names the four topics with the direction the service uses them, every
`$ref` resolves, and the payload schemas it gives accept what really travels (the sample
claims in, a verdict the service builds out) and nothing of the wrong shape.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from service.app import create_app
from service.asyncapi import (
    ASYNCAPI_JSON,
    ASYNCAPI_YAML,
    asyncapi_document,
    documented_settings,
    render_asyncapi,
)
from service.cli import main
from service.decode import Readable, decode
from service.tables import default_table
from service.verdicts import judge

REPO = Path(__file__).parents[2]
SCHEMAS_DIR = REPO / "schemas"
SAMPLES = REPO / "samples" / "claims.jsonl"
TOPICS = {
    "claims.submitted": "receive",
    "claims.accepted": "send",
    "claims.flagged": "send",
    "claims.dead-letter": "send",
}


def _render() -> dict[str, str]:
    """The documents of the app built from the settings' defaults, as the schemas command does."""
    settings = documented_settings()
    return render_asyncapi(create_app(settings, table=default_table()), settings)


def _document() -> dict[str, Any]:
    settings = documented_settings()
    return asyncapi_document(create_app(settings, table=default_table()), settings)


def test_committed_asyncapi_matches_a_fresh_generation() -> None:
    """Regenerate with `claims-validator schemas --out schemas` when the app or models change."""
    for name, text in _render().items():
        committed = (SCHEMAS_DIR / name).read_text()
        assert text == committed, f"schemas/{name} drifted from the service"


def test_the_yaml_is_the_same_document_as_the_json() -> None:
    as_json = json.loads((SCHEMAS_DIR / ASYNCAPI_JSON).read_text())
    as_yaml = yaml.safe_load((SCHEMAS_DIR / ASYNCAPI_YAML).read_text())
    assert as_json == as_yaml


def test_generation_ignores_the_environment(monkeypatch: Any) -> None:
    """A deployment's topic names must not leak into the committed document."""
    monkeypatch.setenv("CLAIMS_TOPICS__SUBMITTED", "prod.claims.in")
    monkeypatch.setenv("CLAIMS_KAFKA__BOOTSTRAP_SERVERS", "kafka-prod:9093")
    assert (SCHEMAS_DIR / ASYNCAPI_JSON).read_text() == _render()[ASYNCAPI_JSON]


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SCHEMAS_DIR / ASYNCAPI_JSON).read_text())
    return doc


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _message_of(doc: dict[str, Any], topic: str) -> dict[str, Any]:
    [channel] = [c for c in doc["channels"].values() if c["address"] == topic]
    [ref] = [m["$ref"] for m in channel["messages"].values()]
    message: dict[str, Any] = _resolve(doc, ref)
    return message


def test_it_is_asyncapi_3_naming_the_four_topics_and_their_direction() -> None:
    doc = _doc()

    assert "3.0.0" == doc["asyncapi"]
    assert ("claims-validator", "1.0.0") == (doc["info"]["title"], doc["info"]["version"])
    assert set(TOPICS) == {c["address"] for c in doc["channels"].values()}
    directions = {
        _resolve(doc, op["channel"]["$ref"])["address"]: op["action"]
        for op in doc["operations"].values()
    }
    assert TOPICS == directions


def test_every_reference_resolves() -> None:
    doc = _doc()
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert len(refs) > 20
    for ref in refs:
        assert _resolve(doc, ref) is not None, ref


def _validator(doc: dict[str, Any], payload_ref: str) -> jsonschema.Draft202012Validator:
    # The payload schema with the document's components beside it, so #/components/... resolve.
    return jsonschema.Draft202012Validator({"$ref": payload_ref, "components": doc["components"]})


def test_the_subscriber_payload_accepts_the_samples_and_rejects_the_malformed_one() -> None:
    doc = _doc()
    message = _message_of(doc, "claims.submitted")
    assert "#/components/schemas/ClaimSubmitted" == message["payload"]["$ref"]
    validator = _validator(doc, message["payload"]["$ref"])
    lines = SAMPLES.read_text().splitlines()

    readable = [json.loads(line) for line in lines if "CLM-SAMPLE-014" not in line]
    for event in readable:
        validator.validate(event)
    malformed = json.loads(next(line for line in lines if "CLM-SAMPLE-014" in line))
    assert list(validator.iter_errors(malformed))


def test_the_verdict_channels_carry_the_verdict_the_service_publishes() -> None:
    doc = _doc()
    table = default_table()
    line = next(line for line in SAMPLES.read_text().splitlines() if "CLM-SAMPLE-014" not in line)
    decoded = decode(line.encode())
    assert isinstance(decoded, Readable)
    verdict = json.loads(
        judge(decoded.event, table, now=datetime(2026, 3, 5, tzinfo=UTC)).model_dump_json()
    )

    for topic in ("claims.accepted", "claims.flagged"):
        message = _message_of(doc, topic)
        assert "#/components/schemas/VerdictEvent" == message["payload"]["$ref"]
        assert "application/json" == message["contentType"]
        validator = _validator(doc, message["payload"]["$ref"])
        validator.validate(verdict)
        assert list(validator.iter_errors({**verdict, "verdict": "maybe"}))


def test_the_dead_letter_channel_documents_the_original_bytes_and_the_dlq_headers() -> None:
    message = _message_of(_doc(), "claims.dead-letter")

    assert "application/octet-stream" == message["contentType"]
    assert {"x-dlq-reason", "x-dlq-detail", "x-dlq-topic", "x-dlq-partition", "x-dlq-offset",
            "x-dlq-timestamp", "x-dlq-group"} == set(message["headers"]["required"])
    payload = _resolve(_doc(), message["payload"]["$ref"])
    assert ("string", "binary") == (payload["type"], payload["format"])


def test_the_document_has_no_http_routes_and_no_correlation_header() -> None:
    """The health and metrics endpoints are not messaging; the service sets no
    correlation_id header (the verdict's causation_id is in its body)."""
    doc = _document()
    text = json.dumps(doc)
    assert "/health" not in text
    assert "/metrics" not in text
    assert "correlationId" not in text


def test_the_schemas_command_writes_json_schemas_asyncapi_and_openapi(
    tmp_path: Path, capsys: Any
) -> None:
    assert 0 == main(["schemas", "--out", str(tmp_path)])

    written = sorted(p.name for p in tmp_path.iterdir())
    assert [
        "asyncapi.json",
        "asyncapi.yaml",
        "claim.submitted.v1.json",
        "openapi.json",
        "verdict.v1.json",
    ] == written
    assert (SCHEMAS_DIR / "openapi.json").read_text() == (tmp_path / "openapi.json").read_text()
    assert (SCHEMAS_DIR / ASYNCAPI_JSON).read_text() == (tmp_path / ASYNCAPI_JSON).read_text()
    assert str(tmp_path / ASYNCAPI_JSON) in capsys.readouterr().out
