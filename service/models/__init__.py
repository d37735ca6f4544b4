"""Wire models: the versioned event contract shared with producers and consumers."""

from service.models.events import (
    Claim,
    ClaimSubmitted,
    Finding,
    Patient,
    RenderingProvider,
    ServiceLine,
    Severity,
    VerdictEvent,
)

__all__ = [
    "Claim",
    "ClaimSubmitted",
    "Finding",
    "Patient",
    "RenderingProvider",
    "ServiceLine",
    "Severity",
    "VerdictEvent",
]
