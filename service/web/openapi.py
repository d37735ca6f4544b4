"""The OpenAPI document of the HTTP API: FastAPI's, plus the request bodies it cannot see.

The claim endpoints read their bodies raw (the Kafka path's decoder judges the bytes and words
the errors), so FastAPI knows no model for them; `claim_body()` names the event models, and
`DocumentedApi` adds their schemas to the document's components. The committed document is
written by `service.web.document`.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from service.models.events import Claim, ClaimSubmitted

__all__ = [
    "API_DESCRIPTION",
    "API_TITLE",
    "API_VERSION",
    "DocumentedApi",
    "claim_body",
    "x12_body",
]

API_TITLE: Final = "claims-validator HTTP API"
API_VERSION: Final = "1.0.0"
API_DESCRIPTION: Final = (
    "Judges professional medical claims (CMS-1500 / X12 837P) the way the Kafka service does: "
    "the same decoder and rule table, the same verdict bytes. Limits (body size, claims per "
    "batch, timeouts) are the CLAIMS_API__* settings. Request bodies are never logged."
)
_REF: Final = "#/components/schemas/{model}"


def _claim_schemas() -> dict[str, Any]:
    # The event's definitions include the bare claim's.
    _, top = models_json_schema([(ClaimSubmitted, "validation")], ref_template=_REF)
    defs: dict[str, Any] = top["$defs"]
    return defs


def claim_body(*, batch: bool) -> dict[str, Any]:
    """The `requestBody` of a claim endpoint: an event or a bare claim, or many of them."""
    one = {
        "oneOf": [
            {"$ref": _REF.format(model=ClaimSubmitted.__name__)},
            {"$ref": _REF.format(model=Claim.__name__)},
        ]
    }
    if not batch:
        return {
            "required": True,
            "description": "One claim.submitted event, or a bare claim (wrapped in an event "
            "whose event_id is sha256: and the hex digest of the body).",
            "content": {"application/json": {"schema": one}},
        }
    return {
        "required": True,
        "description": "A JSON array of claim.submitted events or bare claims, or JSON Lines "
        "(one per line; blank lines are skipped). At most CLAIMS_API__MAX_BATCH_CLAIMS.",
        "content": {
            "application/json": {"schema": {"type": "array", "items": one}},
            "application/x-ndjson": {
                "schema": {
                    "type": "string",
                    "description": "One claim.submitted event or bare claim per line.",
                }
            },
        },
    }


def x12_body() -> dict[str, Any]:
    """The `requestBody` of the 837P endpoint: X12 text, read by pyx12."""
    text = {
        "schema": {
            "type": "string",
            "description": "An X12 005010X222A1 (837P) interchange, ISA to IEA.",
        }
    }
    return {
        "required": True,
        "description": "An 837P file's text. Its claims become the claim.submitted events "
        "`claims-validator ingest` writes (payer ids as in the file); at most "
        "CLAIMS_API__MAX_BATCH_CLAIMS claims.",
        "content": {"application/edi-x12": text, "text/plain": text},
    }


class DocumentedApi(FastAPI):
    """FastAPI whose document also carries the claim models the raw-body endpoints take."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            doc = super().openapi()
            doc.setdefault("components", {}).setdefault("schemas", {}).update(_claim_schemas())
        assert self.openapi_schema is not None
        return self.openapi_schema
