"""`claims-validator check`: verdicts on stdout in input order, errors on stderr, exit codes.

Most tests call the command's entry function in this process (`service.cli.main`); the ones
about standard input and the exit status of a bad command line start the real process.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.cli import main

ROOT = Path(__file__).parents[2]
SAMPLES = ROOT / "samples" / "claims.jsonl"
UNREADABLE = ROOT / "samples" / "unreadable.jsonl"


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes


Run = Callable[..., Result]


@pytest.fixture
def run(capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch) -> Run:
    """`claims-validator check ARGS` in this process, standard input given as bytes."""

    def call(*args: str, stdin: bytes | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main(["check", *args])
        out, err = capsysbinary.readouterr()
        return Result(code, out, err)

    return call


def run_process(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """`python -m service check ARGS` as its own process, end to end."""
    return subprocess.run(
        [sys.executable, "-m", "service", "check", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def verdicts(stdout: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_sample_file_gives_one_verdict_per_line_in_order(run: Run) -> None:
    result = run(str(SAMPLES))
    assert 0 == result.returncode, result.stderr.decode()
    lines = SAMPLES.read_text().splitlines()
    expected_ids = [json.loads(line)["claim"]["claim_id"] for line in lines]
    out = verdicts(result.stdout)
    assert expected_ids == [v["claim_id"] for v in out]
    by_id = {v["claim_id"]: v for v in out}
    assert "accepted" == by_id["CLM-SAMPLE-001"]["verdict"], by_id["CLM-SAMPLE-001"]["findings"]
    alone = by_id["CLM-SAMPLE-003"]
    assert "flagged" == alone["verdict"]
    assert {("ADDON_WITHOUT_PRIMARY", 1)} <= {
        (f["rule_id"], f["line_number"]) for f in alone["findings"]  # type: ignore[attr-defined]
    }
    assert "CLAIM_MALFORMED" in {f["rule_id"] for f in by_id["CLM-SAMPLE-014"]["findings"]}  # type: ignore[attr-defined]
    assert b"" == result.stderr


def test_stdin_and_dash_read_standard_input() -> None:
    data = SAMPLES.read_bytes()

    def stable(stdout: bytes) -> list[dict[str, object]]:
        return [{k: v for k, v in d.items() if k != "occurred_at"} for d in verdicts(stdout)]

    from_stdin = stable(run_process(stdin=data).stdout)
    assert len(SAMPLES.read_text().splitlines()) == len(from_stdin)
    assert stable(run_process("-", stdin=data).stdout) == from_stdin


def test_unreadable_lines_are_reported_on_stderr_and_the_run_goes_on(run: Run) -> None:
    first = SAMPLES.read_text().splitlines()[0]
    mixed = "\n".join([first, "{oops", first, "[1, 2]"]) + "\n"
    result = run(stdin=mixed.encode())
    assert 1 == result.returncode
    assert 2 == len(verdicts(result.stdout))
    errors = [json.loads(line) for line in result.stderr.splitlines()]
    assert [2, 4] == [e["line"] for e in errors]
    assert ["not-json", "not-an-object"] == [e["reason"] for e in errors]
    assert all(e["source"] == "<stdin>" for e in errors)


def test_unreadable_sample_file_names_every_line(run: Run) -> None:
    result = run(str(UNREADABLE))
    assert 1 == result.returncode
    assert b"" == result.stdout
    errors = [json.loads(line) for line in result.stderr.splitlines()]
    assert [1, 2, 3] == [e["line"] for e in errors]
    assert {str(UNREADABLE)} == {e["source"] for e in errors}


def test_missing_file_and_bad_usage_exit_2(run: Run) -> None:
    assert 2 == run("no/such/file.jsonl").returncode
    bad = subprocess.run(
        [sys.executable, "-m", "service", "check", "--no-such-flag"],
        capture_output=True, cwd=ROOT, timeout=60, check=False,
    )
    assert 2 == bad.returncode


def test_bad_rule_table_stops_with_file_and_field(run: Run, tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    result = run("--rules", str(tmp_path), str(SAMPLES))
    assert 3 == result.returncode
    assert b"rule table error" in result.stderr
    assert b"" == result.stdout


def test_the_shipped_sample_file_makes_every_rule_fire(run: Run) -> None:
    """`check samples/claims.jsonl` is the catalogue's showcase: each rule ID appears in it."""
    from service.engine import RULE_IDS

    result = run(str(SAMPLES))
    fired = {f["rule_id"] for v in verdicts(result.stdout) for f in v["findings"]}  # type: ignore[attr-defined]
    assert sorted(RULE_IDS) == sorted(fired)
