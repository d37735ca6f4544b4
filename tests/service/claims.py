"""Test events: realistic claim.submitted payloads with distinctive patient data.

The member id and birth date are distinctive strings so a test can assert they appear in no log
line. The default claim is a facet-joint injection session, 64490 + 64491 with an E/M visit
99213-25, which the shipped rule table accepts; `FLAGGED_CODES` bills the add-ons without their
primary (ADDON_WITHOUT_PRIMARY on lines 1 and 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

__all__ = [
    "ACCEPTED_CODES",
    "BIRTH_DATE",
    "FLAGGED_CODES",
    "MEMBER_ID",
    "claim_event",
    "encode",
]

MEMBER_ID = "PHI-MEMBER-XYZ"
BIRTH_DATE = "1937-02-11"
ACCEPTED_CODES: tuple[str, ...] = ("64490", "64491", "99213")
FLAGGED_CODES: tuple[str, ...] = ("64491", "64492", "99213")
_MODIFIERS = {"99213": ["25"]}


def claim_event(
    claim_id: str,
    codes: Sequence[str] = ACCEPTED_CODES,
    *,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A claim.submitted event for `claim_id` billing `codes`, one line each, same date."""
    return {
        "event_id": event_id or f"evt-{claim_id}",
        "event_type": "claim.submitted",
        "schema_version": 1,
        "occurred_at": "2026-03-05T10:00:00Z",
        "claim": {
            "claim_id": claim_id,
            "payer_id": "PAYER-01",
            "patient": {"member_id": MEMBER_ID, "birth_date": BIRTH_DATE},
            "billing_provider_npi": "1234567893",
            "rendering_provider": {"npi": "1234567893", "taxonomy_code": "208VP0014X"},
            "diagnosis_codes": ["M47.812", "M54.2"],
            "service_lines": [
                {
                    "line_number": n,
                    "procedure_code": code,
                    "modifiers": _MODIFIERS.get(code, []),
                    "units": 1,
                    "place_of_service": "11",
                    "service_date": "2026-03-04",
                    "diagnosis_pointers": [1],
                    "charge_amount": "150.00",
                }
                for n, code in enumerate(codes, 1)
            ],
        },
    }


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)
