"""What the importers of official CMS files share.

- `SourceFileError` (and `ImportFileError`, for the AOC, RVU and POS files): an official file
  cannot be read; the message names file, row and column.
- `cell_text`, `source_code`, `read_source_text`: cells, codes and text as CMS writes them.
- `install_table`: a new table is built in a scratch copy, proven with `read_table`, and only
  then written into the table directory, each file renamed into place, so a bad import never
  leaves a half-written table behind.
- `run_command`: the `claims-validator rules import*` contract: 0 done, 1 a bad file (named with
  row and column), 2 usage.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from service.exitcodes import ExitCode
from service.ruletable.compiled import RuleTable
from service.ruletable.files import RuleTableError
from service.ruletable.load import read_table

__all__ = [
    "ImportFileError",
    "SourceFileError",
    "cell_text",
    "csv_bytes",
    "file_sha256",
    "install_table",
    "read_source_text",
    "run_command",
    "source_code",
]


class SourceFileError(Exception):
    """An official source file cannot be imported: `<file>: row <n>: column <name>: <problem>`."""

    def __init__(self, file: str, row: int | str, column: str, problem: str) -> None:
        super().__init__(f"{file}: row {row}: column {column}: {problem}")


class ImportFileError(SourceFileError):
    """An AOC, RVU or POS source file cannot be imported; the message names file, row, column."""


def cell_text(value: Any) -> str:
    """A workbook cell as text: None -> '', whole floats without `.0`, stripped."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def source_code(value: str) -> str:
    """A HCPCS/CPT code as CMS writes it; Excel drops leading zeros (00100 -> 100), restore them."""
    value = value.strip().upper()
    return value.zfill(5) if value.isdigit() and len(value) < 5 else value


def read_source_text(path: Path) -> str:
    """A CMS text file: UTF-8 (with or without a byte-order mark), else Windows-1252."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="strict")


def csv_bytes(columns: Sequence[str], records: Iterable[dict[str, str]]) -> bytes:
    """A table file's content: deterministic, `\\n` line ends, records in the order given."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue().encode("utf-8")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def install_table(
    stage: Path,
    out_dir: Path,
    replaced: Collection[str],
    *,
    rule_ids: Collection[str],
) -> RuleTable:
    """Prove the table in `stage` loads, then write it into `out_dir`, and load that.

    `replaced` names the top-level files the import rebuilt: they are always written; any other
    file only where `out_dir` lacks it. Each file goes through a `.tmp` sibling renamed into place.
    """
    read_table(stage, rule_ids=rule_ids)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(stage.rglob("*")):  # a directory sorts before its files
        name = path.relative_to(stage).as_posix()
        target = out_dir / name
        if path.is_dir():
            target.mkdir(exist_ok=True)
        elif name in replaced or not target.exists():
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(path.read_bytes())
            tmp.replace(target)
    return read_table(out_dir, rule_ids=rule_ids)


def run_command(
    parser: argparse.ArgumentParser,
    argv: list[str],
    file_options: Sequence[str],
    run: Callable[[argparse.Namespace], str],
) -> int:
    """Parse `argv`, check the files the `file_options` name exist, print what `run` returns.

    The exit code (`ExitCode`): OK; INPUT for an official file that cannot be read
    (`SourceFileError`); CONFIG for a table that fails validation (`RuleTableError`, as `serve`
    and `check` say of a bad table); USAGE for argparse's usage or a file that does not exist.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage
        return ExitCode.OK if exc.code == 0 else ExitCode.USAGE
    for option in file_options:
        path: Path | None = getattr(args, option)
        if path is not None and not path.is_file():
            print(f"{parser.prog}: --{option}: no such file: {path}", file=sys.stderr)
            return ExitCode.USAGE
    try:
        done = run(args)
    except SourceFileError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return ExitCode.INPUT
    except RuleTableError as exc:
        print(f"{parser.prog}: rule table error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    print(done)
    return ExitCode.OK
