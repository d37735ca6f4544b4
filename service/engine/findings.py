"""Building findings from the rule catalogue, so severity and reference have one source."""

from __future__ import annotations

from service.models.events import Finding, ServiceLine
from service.ruletable.compiled import RuleTable

__all__ = ["finding"]


def finding(
    table: RuleTable,
    rule_id: str,
    message: str,
    line: ServiceLine | None = None,
    *,
    line_number: int | None = None,
) -> Finding:
    """A finding for `rule_id`; severity and reference come from the table's catalogue."""
    info = table.rules[rule_id]
    if line is None:
        return Finding(rule_id, info.severity, line_number, None, message, info.reference)
    return Finding(
        rule_id, info.severity, line.line_number, line.procedure_code, message, info.reference
    )
