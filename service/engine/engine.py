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
from service.engine.families import history as cross_claim
from service.models.events import Claim, Finding
from service.models.history import History
from service.ruletable.compiled import RuleTable

__all__ = ["FAMILIES", "HISTORY_RULE_IDS", "RULE_IDS", "evaluate", "evaluate_cross_claim"]

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

HISTORY_RULE_IDS: frozenset[str] = cross_claim.RULE_IDS
"""The cross-claim rules: judged only when the shell hands in the member's history."""

RULE_IDS: frozenset[str] = (
    frozenset().union(*(ids for _, ids, _ in FAMILIES)) | HISTORY_RULE_IDS
) | {
    "CLAIM_MALFORMED",  # emitted by service.decode, before a Claim exists
    "FINDINGS_TRUNCATED",  # emitted by service.verdicts, when a verdict's findings are capped
}


# One name per family, in FAMILIES order: a tuple display of their findings runs less bytecode
# than a loop over FAMILIES. A family added to FAMILIES but not here fails the unpacking at import.
_C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8 = (check for _, _, check in FAMILIES)


def evaluate(
    claim: Claim, table: RuleTable, history: History | None = None
) -> tuple[Finding, ...]:
    """All findings for `claim` under `table`: a pure function of its arguments.

    `history`: the member's earlier claims, from the shell; None (history off) skips the
    cross-claim rules, while an empty `History` judges them against no earlier claim."""
    found = (
        *_C1(claim, table), *_C2(claim, table), *_C3(claim, table), *_C4(claim, table),
        *_C5(claim, table), *_C6(claim, table), *_C7(claim, table), *_C8(claim, table),
    )
    if history is not None:
        crossed = cross_claim.check(claim, history, table)
        if crossed:
            found += tuple(crossed)
    return found


def evaluate_cross_claim(claim: Claim, table: RuleTable, history: History) -> list[Finding]:
    """The cross-claim findings alone: `evaluate(claim, table, history)` is
    `evaluate(claim, table)` followed by these (the shell judges the rest of a batch while
    its history is fetched)."""
    return cross_claim.check(claim, history, table)
