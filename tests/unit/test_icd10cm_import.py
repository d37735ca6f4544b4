"""`rules import-icd10cm`: editions read from simple-icd-10-cm wheels into one compact file."""

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


def wheel(tmp_path: Path, name: str, member: str, text: str) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"simple_icd_10_cm/data/{member}", text)
        archive.writestr("simple_icd_10_cm/__init__.py", "")
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
