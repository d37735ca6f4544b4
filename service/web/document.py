"""`schemas/openapi.json`: the HTTP API's OpenAPI document, as committed.

Built from the settings' defaults, never from the environment, so the file is reproducible;
`claims-validator schemas --out schemas` writes it, and a test fails when it drifts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from service.metrics import ServiceMetrics
from service.settings import Settings
from service.web.api import create_api
from service.web.catalogue import load_rule_table

__all__ = ["OPENAPI_JSON", "render_openapi", "write_openapi"]

OPENAPI_JSON: Final = "openapi.json"


def render_openapi() -> dict[str, str]:
    """File name -> text of the document."""
    table = load_rule_table(None)
    defaults = Settings.model_construct()  # the documented defaults, not this environment
    api = create_api(table, defaults, ServiceMetrics(table))
    return {OPENAPI_JSON: json.dumps(api.openapi(), indent=2, sort_keys=True) + "\n"}


def write_openapi(directory: Path) -> list[Path]:
    """Write the document into `directory` (created if need be); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_openapi().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
