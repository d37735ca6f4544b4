"""The pure rule engine: a claim and the rule table in, findings out. No I/O, no clock, no Kafka."""

from service.engine.engine import (
    FAMILIES,
    HISTORY_RULE_IDS,
    RULE_IDS,
    evaluate,
    evaluate_cross_claim,
)

__all__ = ["FAMILIES", "HISTORY_RULE_IDS", "RULE_IDS", "evaluate", "evaluate_cross_claim"]
