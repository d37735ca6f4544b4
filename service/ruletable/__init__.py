"""The rule table: CMS-derived and curated data, validated at load, compiled into plain lookups."""

from service.ruletable.compiled import (
    AddonCode,
    AddonPairing,
    FeeIndicators,
    Provenance,
    RuleInfo,
    RuleTable,
)

__all__ = [
    "AddonCode",
    "AddonPairing",
    "FeeIndicators",
    "Provenance",
    "RuleInfo",
    "RuleTable",
]
