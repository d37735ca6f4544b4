"""Runs every rule family over one claim, in a fixed order, and returns the findings.

Each family module exposes `RULE_IDS` (the rules it can emit) and `check(claim, table)`.
The order below is the order findings appear in a verdict: pairing, place of service and
modifiers first (the add-on and bilateral edits billers hit most), then the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from service.engine.families import (
    diagnoses,
    modifiers,
    pairing,
    payers,
    place_of_service,
    procedure_codes,
    providers,
    units,
)
from service.models.events import Claim, Finding
from service.ruletable.compiled import RuleTable

__all__ = ["FAMILIES", "RULE_IDS", "evaluate"]

Check = Callable[[Claim, RuleTable], Sequence[Finding]]

FAMILIES: tuple[tuple[str, frozenset[str], Check], ...] = (
    ("procedure_codes", procedure_codes.RULE_IDS, procedure_codes.check),
    ("pairing", pairing.RULE_IDS, pairing.check),
    ("place_of_service", place_of_service.RULE_IDS, place_of_service.check),
    ("modifiers", modifiers.RULE_IDS, modifiers.check),
    ("diagnoses", diagnoses.RULE_IDS, diagnoses.check),
    ("units", units.RULE_IDS, units.check),
    ("providers", providers.RULE_IDS, providers.check),
    ("payers", payers.RULE_IDS, payers.check),
)

RULE_IDS: frozenset[str] = frozenset().union(*(ids for _, ids, _ in FAMILIES)) | {
    "CLAIM_MALFORMED",  # emitted by service.decode, before a Claim exists
    "FINDINGS_TRUNCATED",  # emitted by service.verdicts, when a verdict's findings are capped
}


_CHECKS: tuple[Check, ...] = tuple(check for _, _, check in FAMILIES)


def evaluate(claim: Claim, table: RuleTable) -> tuple[Finding, ...]:
    """All findings for `claim` under `table`: a pure function of its two arguments."""
    findings: list[Finding] = []
    for check in _CHECKS:
        found = check(claim, table)
        if found:  # most families find nothing: skip the call to extend
            findings += found
    return tuple(findings) if findings else ()
