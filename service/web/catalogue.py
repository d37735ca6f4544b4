"""The rule table as people read it: the catalogue of rules and the table's identity.

The one module of `service.web` that names `service.ruletable` (whose layout may change): the
rest of the package takes `RuleTable` and the loaders from here.
"""

from __future__ import annotations

from pathlib import Path

from service.docs import FAMILY_ORDER
from service.ruletable.compiled import RuleTable
from service.tables import default_table, load_table
from service.web.models import ProvenanceEntry, RuleEntry, RuleTableInfo

__all__ = ["RuleTable", "load_rule_table", "rule_entries", "table_info"]


def load_rule_table(directory: Path | None) -> RuleTable:
    """The table in `directory` (`CLAIMS_RULE_TABLE_DIR`), else the one shipped in the package;
    a broken table raises `RuleTableError` naming the file and field."""
    return load_table(directory) if directory is not None else default_table()


def rule_entries(table: RuleTable) -> tuple[RuleEntry, ...]:
    """Every rule, in the README's order: by family, then by rule id."""
    order = {name: i for i, name in enumerate(FAMILY_ORDER)}
    rules = sorted(
        table.rules.values(), key=lambda r: (order.get(r.family, len(order)), r.rule_id)
    )
    return tuple(
        RuleEntry(
            rule_id=r.rule_id,
            family=r.family,
            severity=r.severity,
            meaning=" ".join(r.summary.split()),
            what_to_do=" ".join(r.action.split()),
            source=" ".join(r.reference.split()),
        )
        for r in rules
    )


def table_info(table: RuleTable) -> RuleTableInfo:
    """Version, digest and the provenance of every shipped table (policies included)."""
    policies = table.policies.provenance if table.policies is not None else ()
    return RuleTableInfo(
        version=table.version,
        digest=table.digest,
        rules=len(table.rules),
        provenance=tuple(
            ProvenanceEntry(
                table=p.table,
                source_file=p.source_file,
                release=p.release,
                source_sha256=p.source_sha256,
                rows=p.rows,
            )
            for p in (*table.provenance, *policies)
        ),
    )
