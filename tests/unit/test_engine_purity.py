"""The engine is a pure function of (claim, table): no module keeps state between claims.

Every look-up a rule needs is built with the table (`service.ruletable.compiled`), so a claim
judged under another table, or judged again, gets exactly that table's findings.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
from types import ModuleType

import service.engine
from service.engine import evaluate
from service.models.events import Claim
from service.ruletable.compiled import RuleTable
from service.tables import default_table
from tests.unit.casebook import build_claim


def _claim(diagnosis_codes: list[str], modifiers: list[str] | None = None) -> Claim:
    line = {"procedure_code": "64490", "diagnosis_pointers": [1]}
    if modifiers is not None:
        line["modifiers"] = modifiers
    return Claim(**build_claim({"diagnosis_codes": diagnosis_codes, "service_lines": [line]}))


def _rules(claim: Claim, table: RuleTable) -> set[tuple[str, int | None]]:
    return {(f.rule_id, f.line_number) for f in evaluate(claim, table)}


def _engine_modules() -> list[ModuleType]:
    modules = [service.engine]
    for info in pkgutil.walk_packages(service.engine.__path__, "service.engine."):
        modules.append(importlib.import_module(info.name))
    return modules


def test_a_diagnosis_list_is_judged_again_under_another_table() -> None:
    shipped = default_table()
    assert shipped.policies is not None
    no_regions = dataclasses.replace(
        shipped, policies=dataclasses.replace(shipped.policies, dx_region={})
    )
    lumbar_dx = _claim(["M47.816"])  # a lumbar diagnosis on a cervical facet line
    mismatch = ("DIAGNOSIS_REGION_MISMATCH", 1)
    assert mismatch in _rules(lumbar_dx, shipped)
    assert mismatch not in _rules(lumbar_dx, no_regions)
    assert mismatch in _rules(lumbar_dx, shipped)


def test_diagnosis_lists_seen_again_get_the_same_findings() -> None:
    table = default_table()
    lists = [["M47.812"], ["M54.5"], ["M47.812", "M47.812"], ["M47.812"], ["XYZ"]]
    expected = [
        set(),
        {("DIAGNOSIS_NOT_BILLABLE", None)},  # a heading in both editions either side of its date
        {("DIAGNOSIS_DUPLICATE", None)},
        set(),
        {("DIAGNOSIS_INVALID", None)},
    ]
    for codes, want in zip(lists, expected, strict=True):
        got = {r for r in _rules(_claim(codes), table) if r[0].startswith("DIAGNOSIS_")}
        assert got == want, codes


def test_a_modifier_list_seen_before_gets_the_same_findings() -> None:
    table = default_table()
    first = _rules(_claim(["M47.812"], ["50", "50", "RT"]), table)
    again = _rules(_claim(["M47.812"], ["50", "50", "RT"]), table)
    assert {("MODIFIER_DUPLICATE", 1), ("MODIFIER_50_WITH_ANATOMIC", 1)} <= first
    assert first == again


def test_a_table_made_from_another_gets_its_own_indexes() -> None:
    """`dataclasses.replace` rebuilds the look-ups: none can pair with the old table's."""
    shipped = default_table()
    fee = dict(shipped.fee)
    fee["64490"] = dataclasses.replace(fee["64490"], bilateral="0")
    changed = dataclasses.replace(shipped, fee=fee)
    bilateral = _claim(["M47.812"], ["50"])
    assert ("MODIFIER_50_NOT_ALLOWED", 1) in _rules(bilateral, changed)
    assert ("MODIFIER_50_NOT_ALLOWED", 1) not in _rules(bilateral, shipped)


def test_no_engine_module_keeps_mutable_state() -> None:
    """No module-level dict, list, set or cache, and no `global` rebinding, in the engine."""
    mutable = (dict, list, set, bytearray)
    for module in _engine_modules():
        tree = ast.parse(inspect.getsource(module))
        # A `global` statement, not the word (global surgery, global period) in text.
        rebinds = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Global)]
        assert rebinds == [], module.__name__
        for name, value in vars(module).items():
            if name.startswith("__"):
                continue
            where = f"{module.__name__}.{name}"
            assert not isinstance(value, mutable), where
            assert not hasattr(value, "cache_info"), where  # functools caches
