"""The pure rule engine: a claim and the rule table in, findings out. No I/O, no clock, no Kafka."""

from service.engine.engine import FAMILIES, RULE_IDS, evaluate

__all__ = ["FAMILIES", "RULE_IDS", "evaluate"]
