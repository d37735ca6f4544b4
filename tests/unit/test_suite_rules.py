"""The test suite's own rules: a parametrized test with no cases fails, it is never skipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_a_parametrized_test_with_no_cases_fails_the_run(tmp_path: Path) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "import pytest\n\n\n"
        '@pytest.mark.parametrize("case", [])\n'
        "def test_cases(case: object) -> None:\n"
        "    assert case\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), str(probe)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 != result.returncode
    assert "Empty parameter set" in result.stdout + result.stderr
