"""Building findings from the rule catalogue, so severity and reference have one source."""

from __future__ import annotations

from service.models.events import Finding, ServiceLine
from service.ruletable.compiled import RuleTable

__all__ = ["finding"]


def finding(
    table: RuleTable, rule_id: str, message: str, line: ServiceLine | None = None
) -> Finding:
    """A finding for `rule_id`; severity and reference come from the table's catalogue.

    `model_construct` skips re-validation: every field is built here from validated data, and
    this sits on the hot path of every flagged claim.
    """
    info = table.rules[rule_id]
    return Finding.model_construct(
        rule_id=rule_id,
        severity=info.severity,
        line_number=None if line is None else line.line_number,
        procedure_code=None if line is None else line.procedure_code,
        message=message,
        reference=info.reference,
    )
