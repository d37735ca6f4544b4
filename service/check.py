"""`claims-validator check`: judge claim events from JSON Lines files offline, without Kafka.

One verdict per readable input line goes to standard output, in input order; an unreadable line
gives one JSON error object on standard error naming the file and line, and the run goes on.
With a claim history (`--history DSN`, `service.check_history`), lines are judged in chunks, each
chunk recorded and its histories fetched in one round trip, in input order.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson

from service.decode import Decoded, Unreadable, decode
from service.exitcodes import ExitCode
from service.models.history import History
from service.ruletable.compiled import RuleTable
from service.verdicts import judge_decoded

__all__ = ["CHUNK_LINES", "Histories", "check_files", "check_lines"]

CHUNK_LINES = 500
"""Lines judged per history round trip."""

Histories = Callable[[Sequence[Decoded]], Sequence[History | None]]
"""Records decoded claims in the history and returns each one's history (None: not a claim)."""


def check_lines(
    lines: Iterable[tuple[str, int, bytes]],
    table: RuleTable,
    out: IO[bytes],
    err: IO[bytes],
    histories: Histories | None = None,
) -> int:
    """Judge each `(source, line_number, bytes)`; return how many lines were unreadable."""
    unreadable = 0
    # Blank lines separate nothing in JSON Lines; skipping them loses nothing.
    filled = (line for line in lines if line[2].strip())
    while chunk := list(itertools.islice(filled, CHUNK_LINES if histories else 1)):
        decoded = [decode(raw) for _, _, raw in chunk]
        found = histories(decoded) if histories else [None] * len(chunk)
        for (source, number, _), d, h in zip(chunk, decoded, found, strict=True):
            unreadable += _one(source, number, d, h, table, out, err)
    return unreadable


def _one(
    source: str,
    number: int,
    decoded: Decoded,
    history: History | None,
    table: RuleTable,
    out: IO[bytes],
    err: IO[bytes],
) -> int:
    """Write one line's verdict, or its error; 1 when it was unreadable."""
    verdict = judge_decoded(decoded, table, now=datetime.now(UTC), history=history)
    if isinstance(verdict, Unreadable):
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
        return 1
    out.write(verdict.model_dump_json().encode() + b"\n")
    return 0


def _read(paths: list[str]) -> Iterator[tuple[str, int, bytes]]:
    for path in paths:
        if path == "-":
            for number, raw in enumerate(sys.stdin.buffer, 1):
                yield "<stdin>", number, raw
            continue
        with Path(path).open("rb") as handle:
            for number, raw in enumerate(handle, 1):
                yield path, number, raw


def check_files(paths: list[str], table: RuleTable, histories: Histories | None = None) -> int:
    """Exit status: 0 when every line was read, 1 when some line was not, 2 for a missing file."""
    paths = paths or ["-"]
    missing = [p for p in paths if p != "-" and not Path(p).is_file()]
    if missing:
        for path in missing:
            print(f"claims-validator check: no such file: {path}", file=sys.stderr)
        return ExitCode.USAGE
    unreadable = check_lines(
        _read(paths), table, sys.stdout.buffer, sys.stderr.buffer, histories
    )
    sys.stdout.flush()
    return ExitCode.INPUT if unreadable else ExitCode.OK
