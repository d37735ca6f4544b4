"""The committed JSON Schemas in schemas/ are exactly what the models generate."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from service.event_schemas import render_schemas

SCHEMAS_DIR = Path(__file__).parents[2] / "schemas"
SAMPLES = Path(__file__).parents[2] / "samples" / "claims.jsonl"


def test_committed_schemas_match_the_models() -> None:
    """Regenerate with `claims-validator schemas --out schemas` when the models change."""
    for name, text in render_schemas().items():
        committed = (SCHEMAS_DIR / name).read_text()
        assert text == committed, f"schemas/{name} drifted from the models"


def test_sample_claims_validate_against_the_published_schema() -> None:
    schema = json.loads((SCHEMAS_DIR / "claim.submitted.v1.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    lines = SAMPLES.read_text().splitlines()
    readable = [json.loads(line) for line in lines if "CLM-SAMPLE-014" not in line]
    assert readable
    for event in readable:
        validator.validate(event)
    malformed = json.loads(next(line for line in lines if "CLM-SAMPLE-014" in line))
    assert list(validator.iter_errors(malformed)), "the malformed sample must break the schema"
