"""The AsyncAPI 3.0 document of the service: FastStream's, with the payloads the wire carries.

FastStream generates the document (`app.schema.to_specification()`, what `faststream docs gen`
runs) from the service app it is handed (built by the caller, the `schemas` command or a test,
from `documented_settings()`): the batch subscriber declared by `register_handlers` and
the three output publishers `declare_outputs` declares on the broker. Those publishers exist
for the document only (the handler publishes through `BatchPublisher` with its own producer);
their `schema=` gives the verdict channels the `VerdictEvent` schema.

What FastStream cannot know is completed here, and only here, deterministically:

* the subscriber's payload: the handler takes raw records (it decodes them itself), so
  FastStream sees no model; each record's value is a `ClaimSubmitted`, so that schema is set;
* the messages' content type, Kafka key and headers (`x-dlq-*` on dead letters), and no
  `correlationId` (the service does not use FastStream's correlation header).

The document is built from the settings' defaults, never from the environment, so
`schemas/asyncapi.json` (and `.yaml`) are reproducible; a test fails when they drift.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

import yaml

from service.models.events import ClaimSubmitted, VerdictEvent
from service.settings import Settings, TopicSettings

if TYPE_CHECKING:
    from faststream.asgi import AsgiFastStream
    from faststream.kafka import KafkaBroker

__all__ = [
    "ASYNCAPI_FILES",
    "asyncapi_document",
    "declare_outputs",
    "documented_settings",
    "render_asyncapi",
]

ASYNCAPI_JSON: Final = "asyncapi.json"
ASYNCAPI_YAML: Final = "asyncapi.yaml"
ASYNCAPI_FILES: Final = (ASYNCAPI_JSON, ASYNCAPI_YAML)

TITLE: Final = "claims-validator"
VERSION: Final = "1.0.0"
"""Version of the event contract the document describes (schema_version 1 events)."""
DESCRIPTION: Final = (
    "Validates professional medical claims (CMS-1500 / X12 837P). Consumes claim.submitted "
    "events, judges each claim against the rule table, and publishes one verdict per claim "
    "to the accepted or the flagged topic (key = claim_id), or the unreadable event, byte for "
    "byte, to the dead-letter topic. At-least-once: an input offset is committed only after "
    "its output is acknowledged; a redelivered event yields the same verdict event_id. "
    "Topic names are the defaults of the CLAIMS_TOPICS__* settings."
)
_REF: Final = "#/components/schemas/{model}"
_BINDING_VERSION: Final = "0.4.0"

_CLAIM_KEY: Final = {"type": "string", "description": "claim.claim_id of the event."}
_DLQ_HEADERS: Final = {
    "x-dlq-reason": "Why it is here: too-large, not-json, not-an-object, no-claim-id or "
    "internal-error.",
    "x-dlq-detail": "A short hint (at most 200 characters); never a payload excerpt.",
    "x-dlq-topic": "Topic the record was consumed from.",
    "x-dlq-partition": "Its partition (decimal).",
    "x-dlq-offset": "Its offset (decimal).",
    "x-dlq-timestamp": "Its timestamp, milliseconds since the epoch (decimal).",
    "x-dlq-group": "Consumer group that gave up on it.",
}


def declare_outputs(broker: KafkaBroker, topics: TopicSettings) -> None:
    """Declare the output topics on `broker` with their payload schemas (documentation only)."""
    broker.publisher(
        topics.accepted,
        schema=VerdictEvent,
        title=topics.accepted,
        description="claim.accepted verdicts: no finding of severity error (warnings may be "
        "present). Key = claim_id.",
    )
    broker.publisher(
        topics.flagged,
        schema=VerdictEvent,
        title=topics.flagged,
        description="claim.flagged verdicts: at least one finding of severity error. "
        "Key = claim_id.",
    )
    broker.publisher(
        topics.dead_letter,
        schema=bytes,
        title=topics.dead_letter,
        description="Unreadable input events: the original value, key and headers, plus "
        "x-dlq-* headers saying why and where from.",
    )


def documented_settings() -> Settings:
    """The settings' defaults, whatever the environment says."""
    return Settings.model_construct()


def asyncapi_document(app: AsgiFastStream, settings: Settings) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of `app`, built from `settings`, as a JSON-able dict."""
    doc: dict[str, Any] = app.schema.to_specification().to_jsonable()
    doc["info"]["description"] = DESCRIPTION
    _complete(doc, settings.topics)
    return doc


def _complete(doc: dict[str, Any], topics: TopicSettings) -> None:
    components = doc["components"]
    schemas: dict[str, Any] = components["schemas"]
    messages: dict[str, Any] = components["messages"]
    by_topic = _messages_by_topic(doc)

    for message in messages.values():
        message.pop("correlationId", None)

    # The subscriber: one ClaimSubmitted per record.
    [submitted] = by_topic[topics.submitted]
    placeholder = submitted["payload"]["$ref"].rsplit("/", 1)[-1]
    schemas.pop(placeholder, None)
    claim = ClaimSubmitted.model_json_schema(mode="validation", ref_template=_REF)
    schemas.update(claim.pop("$defs", {}))
    schemas["ClaimSubmitted"] = claim
    submitted["payload"] = {"$ref": _REF.format(model="ClaimSubmitted")}
    _describe(
        submitted,
        content_type="application/json",
        key={"type": "string", "description": "Should be claim.claim_id (per-claim order)."},
    )

    # FastStream renders `schema=` in validation mode; what is published is serialized.
    verdict = VerdictEvent.model_json_schema(mode="serialization", ref_template=_REF)
    schemas.update(verdict.pop("$defs", {}))
    schemas["VerdictEvent"] = verdict
    for topic in (topics.accepted, topics.flagged):
        [message] = by_topic[topic]
        _describe(
            message,
            content_type="application/json",
            key=_CLAIM_KEY,
            headers={"content-type": "application/json"},
        )

    [dead] = by_topic[topics.dead_letter]
    dead_payload = schemas[dead["payload"]["$ref"].rsplit("/", 1)[-1]]  # binary, from bytes
    dead_payload["description"] = (
        "The consumed record's value, unchanged (empty, with an x-dlq-value-dropped header, "
        "if the original was too large to forward)."
    )
    dead_headers: dict[str, Any] = {
        name: {"type": "string", "description": text} for name, text in _DLQ_HEADERS.items()
    }
    dead_headers["x-dlq-value-dropped"] = {
        "type": "string",
        "description": "Present only when the value was dropped: its size and why.",
    }
    _describe(
        dead,
        content_type="application/octet-stream",
        key={"description": "The consumed record's key, unchanged (may be null)."},
        header_schema={
            "type": "object",
            "description": "The consumed record's own headers are kept as well.",
            "properties": dead_headers,
            "required": list(_DLQ_HEADERS),
            "additionalProperties": True,
        },
    )


def _messages_by_topic(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Topic address -> its message objects in components.messages."""
    messages = doc["components"]["messages"]
    out: dict[str, list[dict[str, Any]]] = {}
    for channel in doc["channels"].values():
        found = out.setdefault(channel["address"], [])
        for ref in channel["messages"].values():
            found.append(messages[ref["$ref"].rsplit("/", 1)[-1]])
    return out


def _describe(
    message: dict[str, Any],
    *,
    content_type: str,
    key: dict[str, Any],
    headers: dict[str, str] | None = None,
    header_schema: dict[str, Any] | None = None,
) -> None:
    message["contentType"] = content_type
    message["bindings"] = {"kafka": {"key": key, "bindingVersion": _BINDING_VERSION}}
    if headers is not None:
        header_schema = {
            "type": "object",
            "properties": {name: {"const": value} for name, value in headers.items()},
            "required": list(headers),
        }
    if header_schema is not None:
        message["headers"] = header_schema


def render_asyncapi(app: AsgiFastStream, settings: Settings) -> dict[str, str]:
    """File name -> text, exactly as committed under `schemas/` (for the app built from
    `documented_settings()`)."""
    doc = asyncapi_document(app, settings)
    return {
        ASYNCAPI_JSON: json.dumps(doc, indent=2, sort_keys=True) + "\n",
        ASYNCAPI_YAML: yaml.safe_dump(doc, sort_keys=True, allow_unicode=True, width=100),
    }
