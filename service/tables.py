"""The rule table the service judges by: read by `service.ruletable`, checked against the engine.

The rule table knows nothing of the engine; here the two meet. A table is refused at load (a
`RuleTableError` naming the file and field) unless its catalogue describes every rule the engine
can emit, so no finding is ever written without its severity and reference.
"""

from __future__ import annotations

import functools
from pathlib import Path

from service.engine import RULE_IDS
from service.ruletable.compiled import RuleTable
from service.ruletable.load import read_table

__all__ = ["default_table", "load_table"]


def load_table(directory: Path | None = None) -> RuleTable:
    """The table in `directory` (None = the shipped data), validated and compiled."""
    return read_table(directory, rule_ids=RULE_IDS)


@functools.cache
def default_table() -> RuleTable:
    """The shipped table, loaded once per process."""
    return load_table()
