"""`serve` judges by the rule table the settings name, and refuses a broken one at start-up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from service.app import rule_table
from service.settings import Settings
from service.tables import default_table

DATA = Path(__file__).parents[2] / "service" / "ruletable" / "data"
ROOT = Path(__file__).parents[2]


def test_rule_table_dir_setting_selects_the_table(tmp_path: Path) -> None:
    copy = tmp_path / "table"
    shutil.copytree(DATA, copy)
    aoc = copy / "aoc.csv"
    aoc.write_text(aoc.read_text().replace("Contractor Defined Primary Codes", "CCCCC rows", 1))
    chosen = rule_table(Settings(rule_table_dir=copy))
    assert default_table().digest != chosen.digest
    assert default_table().digest == rule_table(Settings()).digest


def test_serve_with_a_broken_rule_table_exits_3_naming_file_and_field(tmp_path: Path) -> None:
    copy = tmp_path / "table"
    shutil.copytree(DATA, copy)
    aoc = copy / "aoc.csv"
    lines = aoc.read_text().splitlines()
    lines[5] = lines[5].replace(",1,", ",7,", 1)  # an AOC edit type that does not exist
    aoc.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
    env["CLAIMS_RULE_TABLE_DIR"] = str(copy)
    env["CLAIMS_KAFKA__BOOTSTRAP_SERVERS"] = "127.0.0.1:1"  # never reached: the table fails first
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve"],
        capture_output=True, env=env, cwd=ROOT, timeout=120, check=False,
    )
    assert 3 == result.returncode, result.stderr.decode()[-2000:]
    assert b"aoc.csv: row " in result.stderr
    assert b"edit_type" in result.stderr
