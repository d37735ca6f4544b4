"""Validates `visits.yaml` and compiles it into `Visits` (a problem names file and field)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import TypeAdapter

from service.ruletable.codes import expand_code_spec
from service.ruletable.compiled.visits import SettingRule, Visits
from service.ruletable.file_models_visits import VISITS_FILE, VisitsFile
from service.ruletable.files import RuleTableError, validated, yaml_data

__all__ = ["load_visits"]

_VISITS = TypeAdapter(VisitsFile)


def load_visits(
    files: Mapping[str, bytes], known_codes: Mapping[str, object], pos_codes: Mapping[str, str]
) -> Visits:
    """`known_codes`: the fee-schedule codes (a range keeps only those, so a table built from a
    smaller fee file keeps fewer); `pos_codes`: the place-of-service code set."""
    if VISITS_FILE not in files:
        raise RuleTableError(VISITS_FILE, "-", "-", "file not found in the rule-table directory")
    data = validated(VISITS_FILE, _VISITS, yaml_data(files, VISITS_FILE), "mapping")
    em = _codes("em_modifier_codes.codes", data.em_modifier_codes.codes, known_codes)
    distinct = _codes(
        "distinct_modifier_excluded.codes", data.distinct_modifier_excluded.codes, known_codes
    )
    setting_of: dict[str, SettingRule] = {}
    names: set[str] = set()
    for i, s in enumerate(data.settings):
        where = f"settings[{i}]"
        if s.name in names:
            raise RuleTableError(VISITS_FILE, "-", f"{where}.name", f"duplicate {s.name!r}")
        names.add(s.name)
        if len(set(s.forbidden)) != len(s.forbidden):
            raise RuleTableError(VISITS_FILE, "-", f"{where}.forbidden", "a place is listed twice")
        # A place the code set does not hold is POS_INVALID before any setting is judged, so only
        # the places of the shipped set are kept (a table built on a smaller set keeps fewer).
        places = frozenset(p for p in s.forbidden if p in pos_codes)
        rule = SettingRule(s.name, s.label, places, s.reason, s.reference)
        for code in _codes(f"{where}.codes", s.codes, known_codes):
            if code in setting_of:
                raise RuleTableError(VISITS_FILE, "-", f"{where}.codes", f"{code} listed twice")
            setting_of[code] = rule
    return Visits(
        version=f"visits-{data.curated_version}",
        em_modifier_codes=em,
        no_distinct_modifier=distinct,
        setting_of=setting_of,
    )


def _codes(where: str, specs: Sequence[str], known: Mapping[str, object]) -> frozenset[str]:
    out: set[str] = set()
    for spec in specs:
        try:
            codes = expand_code_spec(spec)
        except ValueError as exc:
            raise RuleTableError(VISITS_FILE, "-", where, str(exc)) from None
        out.update(c for c in codes if c in known)
    return frozenset(out)
