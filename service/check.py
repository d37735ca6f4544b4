"""`claims-validator check`: judge claim events from JSON Lines files offline, without Kafka.

One verdict per readable input line goes to standard output, in input order; an unreadable line
gives one JSON error object on standard error naming the file and line, and the run goes on.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson

from service.decode import Unreadable
from service.exitcodes import ExitCode
from service.ruletable.compiled import RuleTable
from service.verdicts import judge_raw

__all__ = ["check_files", "check_lines"]


def check_lines(
    lines: Iterable[tuple[str, int, bytes]],
    table: RuleTable,
    out: IO[bytes],
    err: IO[bytes],
) -> int:
    """Judge each `(source, line_number, bytes)`; return how many lines were unreadable."""
    unreadable = 0
    for source, number, raw in lines:
        if not raw.strip():
            continue  # blank lines separate nothing in JSON Lines; skipping them loses nothing
        verdict = judge_raw(raw, table, now=datetime.now(UTC))
        if isinstance(verdict, Unreadable):
            unreadable += 1
            err.write(
                orjson.dumps(
                    {
                        "error": "unreadable-claim",
                        "reason": verdict.reason,
                        "detail": verdict.detail,
                        "source": source,
                        "line": number,
                    }
                )
                + b"\n"
            )
            continue
        out.write(verdict.model_dump_json().encode() + b"\n")
    return unreadable


def _read(paths: list[str]) -> Iterator[tuple[str, int, bytes]]:
    for path in paths:
        if path == "-":
            for number, raw in enumerate(sys.stdin.buffer, 1):
                yield "<stdin>", number, raw
            continue
        with Path(path).open("rb") as handle:
            for number, raw in enumerate(handle, 1):
                yield path, number, raw


def check_files(paths: list[str], table: RuleTable) -> int:
    """Exit status: 0 when every line was read, 1 when some line was not, 2 for a missing file."""
    paths = paths or ["-"]
    missing = [p for p in paths if p != "-" and not Path(p).is_file()]
    if missing:
        for path in missing:
            print(f"claims-validator check: no such file: {path}", file=sys.stderr)
        return ExitCode.USAGE
    unreadable = check_lines(_read(paths), table, sys.stdout.buffer, sys.stderr.buffer)
    sys.stdout.flush()
    return ExitCode.INPUT if unreadable else ExitCode.OK
