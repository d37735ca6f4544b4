"""Verdict construction details the hot path re-implements: the verdict id and the event model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from service.models.events import Finding, VerdictEvent
from service.tables import default_table
from service.verdicts import VERDICT_NAMESPACE, verdict_event, verdict_id

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "0b7c2f0e-2d1e-4d4e-9a77-3f0f8f1f8a01|" + "ab" * 32,
        "sha256:" + "0" * 64 + "|" + "f" * 64,
        "événement-ü-日本|x",
    ],
)
def test_verdict_id_is_the_rfc4122_uuid5_of_its_key(key: str) -> None:
    """Redelivered events must keep their ids: the fast id is exactly uuid.uuid5."""
    assert verdict_id(key) == str(uuid.uuid5(VERDICT_NAMESPACE, key))


def test_verdict_id_matches_uuid5_on_every_variant_nibble() -> None:
    """Many keys, so every value of the hex digit that carries the variant bits is seen."""
    keys = [f"evt-{n:06d}|digest" for n in range(500)]
    assert [verdict_id(k) for k in keys] == [str(uuid.uuid5(VERDICT_NAMESPACE, k)) for k in keys]
    assert {verdict_id(k)[19] for k in keys} == set("89ab")


def test_verdict_event_carries_the_findings_and_the_flagged_state() -> None:
    table = default_table()
    warning = Finding("ADDON_PRIMARY_UNLISTED", "warning", 2, "64727", "Line 2: w; do x.", "ref")
    error = Finding("ADDON_WITHOUT_PRIMARY", "error", 1, "64491", "Line 1: e; do y.", "ref")
    accepted = verdict_event(
        cause="evt-1", claim_id="CLM-1", findings=(warning,), table=table, now=NOW
    )
    flagged = verdict_event(
        cause="evt-1", claim_id="CLM-1", findings=(warning, error), table=table, now=NOW
    )
    assert (accepted.verdict, accepted.event_type) == ("accepted", "claim.accepted")
    assert (flagged.verdict, flagged.event_type) == ("flagged", "claim.flagged")
    assert flagged.findings == (warning, error)
    assert flagged.event_id == accepted.event_id == verdict_id(f"evt-1|{table.digest}")
    assert isinstance(flagged, VerdictEvent)
    assert flagged.model_fields_set == set(VerdictEvent.model_fields)
