"""JSON Schemas of the event contract, generated from the wire models (never hand-written)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from service.models.events import ClaimSubmitted, VerdictEvent

__all__ = ["SCHEMAS", "render_schemas", "write_texts"]

SCHEMA_BASE = "https://claims-validator.example/schemas/"

SCHEMAS: dict[str, tuple[type[ClaimSubmitted] | type[VerdictEvent], str]] = {
    "claim.submitted.v1.json": (ClaimSubmitted, "validation"),
    "verdict.v1.json": (VerdictEvent, "serialization"),
}


def render_schemas() -> dict[str, str]:
    """File name -> schema text, exactly as committed under `schemas/`."""
    out: dict[str, str] = {}
    for name, (model, mode) in SCHEMAS.items():
        schema: dict[str, Any] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": SCHEMA_BASE + name,
            **model.model_json_schema(mode=mode),  # type: ignore[arg-type]
        }
        out[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def write_texts(directory: Path, texts: Mapping[str, str]) -> list[Path]:
    """Write each file name -> text into `directory` (created if need be); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in texts.items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
