"""Rule test cases as data: a compact claim (overrides on a base claim) and its expected findings.

A case file `tests/unit/cases/<family>.yaml` holds cases for one rule family; a case's expected
findings are compared, as a set of (rule_id, line_number), with the findings of that family only,
so adding a rule family never rewrites another family's cases.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from service.models.events import Claim

CASES_DIR = Path(__file__).parent / "cases"

BASE_CLAIM: dict[str, Any] = {
    "claim_id": "CLM-TEST-0001",
    "payer_id": "ACME",
    "patient": {"member_id": "TESTMEMBER1", "birth_date": "1951-07-14"},
    "billing_provider_npi": "1234567893",
    "rendering_provider": {"npi": "1234567893", "taxonomy_code": "208VP0014X"},
    "diagnosis_codes": ["M47.812", "M54.2"],
}

BASE_LINE: dict[str, Any] = {
    "procedure_code": "64490",
    "modifiers": [],
    "units": 1,
    "place_of_service": "11",
    "service_date": "2025-03-04",
    "diagnosis_pointers": [1],
    "charge_amount": "100.00",
}


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    claim: dict[str, Any]
    expect: frozenset[tuple[str, int | None]]


def build_claim(overrides: dict[str, Any]) -> dict[str, Any]:
    """The base claim with `overrides` applied; each service line is merged over BASE_LINE."""
    claim = copy.deepcopy(BASE_CLAIM)
    lines = overrides.get("service_lines", [{}])
    for key, value in overrides.items():
        if key != "service_lines":
            claim[key] = copy.deepcopy(value)
    claim["service_lines"] = [
        {**copy.deepcopy(BASE_LINE), "line_number": i, **line} for i, line in enumerate(lines, 1)
    ]
    return claim


def build_event(**claim_overrides: Any) -> dict[str, Any]:
    """A `claim.submitted` event around `build_claim(claim_overrides)`, with a fixed event id."""
    return {
        "event_id": "0b7c2f0e-2d1e-4d4e-9a77-3f0f8f1f8a01",
        "event_type": "claim.submitted",
        "schema_version": 1,
        "occurred_at": "2025-03-04T15:02:11Z",
        "claim": build_claim(dict(claim_overrides)),
    }


def load_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        if path.stem == "history":  # cases with earlier claims: tests/unit/test_engine_history.py
            continue
        for raw in yaml.safe_load(path.read_text()) or []:
            cases.append(
                Case(
                    family=path.stem,
                    name=raw["name"],
                    claim=build_claim(raw.get("claim", {})),
                    expect=frozenset(
                        (e["rule_id"], e.get("line")) for e in raw.get("expect", [])
                    ),
                )
            )
    return cases


def parse(claim: dict[str, Any]) -> Claim:
    return Claim(**claim)
