"""The shipped rule table loads, holds what the CMS files say, and broken tables are refused.

Broken tables are copies of the shipped data with one defect each; the error a user sees must
name the file, the row and the field, so the person editing the data can find the mistake.
"""

from __future__ import annotations

import csv
import re
import shutil
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from service.engine import RULE_IDS
from service.ruletable.load import DATA_DIR, RuleTableError, read_table
from service.tables import default_table, load_table

TINY_RULES = """\
- id: TINY_RULE
  severity: error
  summary: Something is wrong with the claim.
  action: Fix the claim.
  reference: F-TEST-1; test fixture
"""


def _csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


@pytest.fixture
def table_dir(tmp_path: Path) -> Path:
    """A copy of the shipped data whose catalogue is one tiny fixture file."""
    directory = tmp_path / "data"
    shutil.copytree(DATA_DIR, directory, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(directory / "rules")
    (directory / "rules").mkdir()
    (directory / "rules" / "tiny.yaml").write_text(TINY_RULES, encoding="utf-8")
    return directory


def _load(directory: Path) -> None:
    read_table(directory, rule_ids={"TINY_RULE"})


# -- the shipped table ---------------------------------------------------------------------------


def test_shipped_table_has_a_catalogue_entry_for_every_engine_rule() -> None:
    table = default_table()
    assert table.rules.keys() >= RULE_IDS
    assert table is default_table()  # cached per process


def test_shipped_table_version_and_provenance() -> None:
    table = default_table()
    assert table.version == (
        "aoc-2026q2.pfs-2025jan.pos-2024.curated-2.icd10cm-2021jan-2023oct-2025apr-2026apr.mue-descriptor.payers-4.regions-1.visits-1.freq-1"
    )
    assert re.fullmatch(r"[0-9a-f]{64}", table.digest)
    releases = {p.table: (p.source_file, p.release, p.rows) for p in table.provenance}
    assert releases == {
        "aoc": ("AOC_V2026Q2-MCR.xlsx", "2026Q2", 9000),
        "fee_indicators": ("PPRRVU25_JAN1.csv", "2025-JAN", 16647),
        "place_of_service": ("place-of-service.csv", "2024", 52),
    }


def test_shipped_aoc_table_counts_match_the_cms_file() -> None:
    rows = _csv(DATA_DIR / "aoc.csv")[1:]
    assert len(rows) == 9000
    assert Counter(row[1] for row in rows) == {"1": 8293, "3": 660, "2": 47}
    table = default_table()
    assert len(table.addons) == 830
    contractor_rows = sum(1 for row in rows if row[3] == "CCCCC")
    assert contractor_rows == 55
    assert sum(len(a.pairings) for a in table.addons.values()) == 9000 - contractor_rows


def test_shipped_addon_pairings_for_facet_codes() -> None:
    addons = default_table().addons
    facet_2nd = addons["64491"]
    assert facet_2nd.edit_type == 1
    assert [(p.primary, p.effective, p.deleted) for p in facet_2nd.pairings] == [
        ("64490", date(2013, 4, 1), None)
    ]
    lumbar_2nd = {p.primary: p.effective for p in addons["64494"].pairings}
    assert lumbar_2nd == {"64493": date(2013, 4, 1), "64490": date(2023, 1, 1)}
    assert addons["64494"].primaries_on(date(2022, 12, 31)) == {"64493"}
    assert addons["64494"].primaries_on(date(2023, 1, 1)) == {"64493", "64490"}
    assert addons["64462"].primaries_on(date(2025, 6, 1)) == {"64461"}
    assert not {"64490", "64493", "64483"} & addons["77003"].primaries_on(date(2025, 6, 1))
    for not_addon in ("64490", "64493", "64448", "76000", "62321", "20552", "0213T"):
        assert not_addon not in addons


def test_shipped_aoc_deletions_are_last_days_in_effect() -> None:
    addons = default_table().addons
    deleted = addons["37222"]
    assert deleted.deleted == date(2025, 12, 31)
    assert deleted.is_addon_on(date(2025, 12, 31))
    assert not deleted.is_addon_on(date(2026, 1, 1))
    edits_77003 = {p.primary: p for p in addons["77003"].pairings}
    assert edits_77003["62270"].deleted == date(2019, 12, 31)
    assert "62270" in addons["77003"].primaries_on(date(2019, 12, 31))
    assert "62270" not in addons["77003"].primaries_on(date(2020, 1, 1))


def test_shipped_contractor_defined_addons_are_kept() -> None:
    addons = default_table().addons
    assert addons["0054T"].edit_type == 2
    assert addons["0054T"].contractor_defined
    assert addons["0054T"].pairings == ()
    type3 = addons["64727"]
    assert type3.edit_type == 3
    assert type3.contractor_defined
    assert "64702" in type3.primaries_on(date(2025, 6, 1))


def test_shipped_fee_indicators() -> None:
    fee = default_table().fee
    assert len(fee) == 16647
    got = {code: (f.status, f.global_days, f.mult_proc, f.bilateral, f.pctc)
           for code, f in fee.items() if code in {"64490", "64491", "64633", "20552", "76000",
                                                   "0213T", "0214T", "99153", "00100"}}
    assert got == {
        "64490": ("A", "000", "2", "1", "0"),
        "64491": ("A", "ZZZ", "0", "1", "0"),
        "64633": ("A", "010", "2", "1", "0"),
        "20552": ("A", "000", "2", "0", "0"),
        "76000": ("A", "XXX", "0", "0", "1"),
        "0213T": ("C", "XXX", "0", "1", "0"),
        "0214T": ("C", "ZZZ", "0", "1", "0"),
        "99153": ("A", "ZZZ", "9", "9", "3"),
        "00100": ("J", "XXX", "9", "9", "9"),  # Excel's "100", leading zeros restored
    }
    global_days = {f.global_days for f in fee.values()}
    assert global_days == {"000", "010", "090", "MMM", "XXX", "YYY", "ZZZ"}


def test_shipped_fee_file_has_only_the_six_indicator_columns() -> None:
    rows = _csv(DATA_DIR / "fee_indicators.csv")
    assert rows[0] == ["code", "status", "global_days", "mult_proc", "bilateral", "pctc"]
    assert {len(row) for row in rows} == {6}
    # No free text at all: every indicator is a code of at most 3 characters.
    assert max(len(cell) for row in rows[1:] for cell in row[1:]) <= 3


def test_shipped_place_of_service_codes_and_curated_sets() -> None:
    table = default_table()
    assert table.pos_codes["11"] == "Office"
    assert table.pos_codes["24"] == "Ambulatory Surgical Center"
    assert len(table.pos_codes) == 52
    spine = {"11", "19", "21", "22", "24", "49"}
    for code in ("64479", "64484", "64490", "64495", "64633", "64636", "62320", "62327",
                 "64461", "64463", "0213T", "0218T"):
        assert table.pos_allowed[code] == spine, code
    assert "64481" not in table.pos_allowed  # inside a range, but not a CMS code
    assert "20552" not in table.pos_allowed  # deliberately unrestricted
    assert not {"02", "10", "12", "23", "41", "42", "81"} & table.pos_allowed["64490"]
    for places in table.pos_allowed.values():
        assert places <= table.pos_codes.keys()


def test_digest_follows_the_bytes_of_the_data(table_dir: Path) -> None:
    first = read_table(table_dir, rule_ids={"TINY_RULE"})
    again = read_table(table_dir, rule_ids={"TINY_RULE"})
    assert first.digest == again.digest
    pos_allowed = table_dir / "pos_allowed.yaml"
    pos_allowed.write_text(pos_allowed.read_text(encoding="utf-8") + "# edited\n", "utf-8")
    assert read_table(table_dir, rule_ids={"TINY_RULE"}).digest != first.digest


# -- broken tables -------------------------------------------------------------------------------


def _edit_cell(path: Path, row: int, column: str, value: str) -> None:
    rows = _csv(path)
    rows[row - 1][rows[0].index(column)] = value
    _write_csv(path, rows)


@pytest.mark.parametrize(
    ("file", "row", "column", "value", "message"),
    [
        pytest.param("aoc.csv", 7, "effective", "2013-02-30",
                     r"^aoc\.csv: row 7: field effective: .*2013-02-30", id="bad-date"),
        pytest.param("aoc.csv", 3, "deleted", "2019365",
                     r"^aoc\.csv: row 3: field deleted: expected an ISO", id="julian-date-left"),
        pytest.param("aoc.csv", 5, "edit_type", "4",
                     r"^aoc\.csv: row 5: field edit_type: ", id="unknown-edit-type"),
        pytest.param("fee_indicators.csv", 4, "global_days", "90",
                     r"^fee_indicators\.csv: row 4: field global_days: ", id="bad-global-days"),
    ],
)
def test_bad_cell_names_file_row_and_field(
    table_dir: Path, file: str, row: int, column: str, value: str, message: str
) -> None:
    _edit_cell(table_dir / file, row, column, value)
    with pytest.raises(RuleTableError, match=message):
        _load(table_dir)


def test_missing_column(table_dir: Path) -> None:
    rows = [row[:-1] for row in _csv(table_dir / "fee_indicators.csv")]
    _write_csv(table_dir / "fee_indicators.csv", rows)
    with pytest.raises(
        RuleTableError, match=r"^fee_indicators\.csv: row 1: field pctc: missing column$"
    ):
        _load(table_dir)


def test_description_column_is_refused(table_dir: Path) -> None:
    rows = _csv(table_dir / "fee_indicators.csv")
    rows = [[*row, "Some procedure text"] for row in rows]
    rows[0][-1] = "description"
    _write_csv(table_dir / "fee_indicators.csv", rows)
    with pytest.raises(
        RuleTableError, match=r"^fee_indicators\.csv: row 1: field description: unexpected column$"
    ):
        _load(table_dir)


def test_row_count_must_match_the_manifest(table_dir: Path) -> None:
    rows = _csv(table_dir / "aoc.csv")
    _write_csv(table_dir / "aoc.csv", rows[:-1])
    with pytest.raises(
        RuleTableError,
        match=r"^manifest\.json: row 1: field tables\.aoc\.rows: "
        r"says 9000 rows but aoc\.csv has 8999",
    ):
        _load(table_dir)


def test_duplicate_rule_id_names_both_places(table_dir: Path) -> None:
    (table_dir / "rules" / "zz_other.yaml").write_text(
        TINY_RULES.replace("TINY_RULE", "OTHER_RULE") + TINY_RULES, encoding="utf-8"
    )
    with pytest.raises(
        RuleTableError,
        match=r"^rules/zz_other\.yaml: row 2: field id: rule TINY_RULE is already defined in "
        r"rules/tiny\.yaml row 1$",
    ):
        _load(table_dir)


def test_bad_catalogue_entry(table_dir: Path) -> None:
    (table_dir / "rules" / "tiny.yaml").write_text(
        TINY_RULES + TINY_RULES.replace("TINY_RULE", "SECOND").replace("error", "fatal"), "utf-8"
    )
    with pytest.raises(RuleTableError, match=r"^rules/tiny\.yaml: row 2: field severity: "):
        _load(table_dir)


def test_catalogue_entry_with_unknown_key(table_dir: Path) -> None:
    (table_dir / "rules" / "tiny.yaml").write_text(TINY_RULES + "  severty: warning\n", "utf-8")
    with pytest.raises(RuleTableError, match=r"^rules/tiny\.yaml: row 1: field severty: "):
        _load(table_dir)


def test_every_engine_rule_needs_a_catalogue_entry(table_dir: Path) -> None:
    with pytest.raises(
        RuleTableError, match=r"^rules/\*\.yaml: row -: field id: no catalogue entry for rule id "
        r"NOT_CATALOGUED;"
    ):
        read_table(table_dir, rule_ids={"TINY_RULE", "NOT_CATALOGUED"})
    with pytest.raises(RuleTableError, match=r"field id: no catalogue entry for rule id "):
        load_table(table_dir)  # the tiny catalogue lacks the engine's rules


def test_pos_allowed_with_unknown_place_of_service(table_dir: Path) -> None:
    path = table_dir / "pos_allowed.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace('"24", "49"]', '"24", "77"]'), encoding="utf-8"
    )
    with pytest.raises(
        RuleTableError,
        match=r"^pos_allowed\.yaml: row 1: field place_sets\.places: unknown place-of-service "
        r"code '77'",
    ):
        _load(table_dir)


def test_pos_allowed_with_unknown_set_and_bad_range(table_dir: Path) -> None:
    path = table_dir / "pos_allowed.yaml"
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace('["64633-64636"]', '["64636-64633"]'), "utf-8")
    with pytest.raises(
        RuleTableError, match=r"^pos_allowed\.yaml: row 3: field procedures\.codes: range "
    ):
        _load(table_dir)
    path.write_text(
        original + "  - set: nowhere\n    codes: [\"20552\"]\n", encoding="utf-8"
    )
    with pytest.raises(
        RuleTableError, match=r"^pos_allowed\.yaml: row 7: field procedures\.set: unknown place set"
    ):
        _load(table_dir)


def test_curated_version_must_match_the_manifest(table_dir: Path) -> None:
    path = table_dir / "pos_allowed.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("curated_version: 2", "curated_version: 3"),
        encoding="utf-8",
    )
    with pytest.raises(
        RuleTableError, match=r"^manifest\.json: row 1: field curated_version: is 2 but "
        r"pos_allowed\.yaml has 3; re-run `claims-validator rules import`"
    ):
        _load(table_dir)


def test_missing_file(table_dir: Path) -> None:
    (table_dir / "place_of_service.csv").unlink()
    with pytest.raises(
        RuleTableError, match=r"^place_of_service\.csv: row -: field -: file not found"
    ):
        _load(table_dir)


def test_fee_status_reported_code_listed_twice(table_dir: Path) -> None:
    path = table_dir / "fee_status.yaml"
    original = path.read_text(encoding="utf-8")
    path.write_text(
        original + '  - code: "99024"\n    reference: listed again\n', encoding="utf-8"
    )
    with pytest.raises(
        RuleTableError, match=r"^fee_status\.yaml: row 2: field reported\.code: listed twice"
    ):
        _load(table_dir)
