"""A member's earlier claims, as the cross-claim rules read them.

The shell (`service.historydb`) fetches these from the claim-history database; the engine's
history family (`service.engine.families.history`) only reads them. No patient identifiers: the
member is implied (a `History` is always one member's), and each line keeps only what the rules
compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = ["EMPTY_HISTORY", "History", "PriorClaim", "PriorLine"]


@dataclass(frozen=True, slots=True)
class PriorLine:
    procedure_code: str
    modifiers: tuple[str, ...]
    service_date: date
    units: int
    place_of_service: str
    rendering_npi: str
    """The line's rendering NPI, else the claim's."""


@dataclass(frozen=True, slots=True)
class PriorClaim:
    claim_id: str
    sequence: int
    """When the claim was first stored: earlier claims have smaller sequences."""
    content_key: str
    """`service.engine.families.history.content_key` of the claim as stored."""
    lines: tuple[PriorLine, ...]


@dataclass(frozen=True, slots=True)
class History:
    """The claims of the same payer and member first seen before the claim being judged, each
    in the version current at that moment (a correction replaces the version it corrects)."""

    claims: tuple[PriorClaim, ...] = ()
    content_key: str | None = None
    """`content_key` of the claim judged against this history when the shell has it already
    (the store keyed the claim's row with it); None: the engine computes it."""


EMPTY_HISTORY = History()
