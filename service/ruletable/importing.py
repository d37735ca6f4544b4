"""What the two importers of official CMS files share (`importer`: AOC, RVU, POS; `mue`: MUE).

- `SourceFileError`: an official file cannot be read; the message names file, row and column.
- `cell_text`: a workbook cell as the text CMS meant (Excel gives floats for numbers).
- `install_table`: a new table is built in a scratch copy, proven with `load_table`, and only
  then written into the table directory, each file renamed into place, so a bad import never
  leaves a half-written table behind.
- `run_command`: the `claims-validator rules import*` contract: 0 done, 1 a bad file (named with
  row and column), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from service.ruletable.compiled import RuleTable
from service.ruletable.files import RuleTableError
from service.ruletable.load import load_table

__all__ = ["SourceFileError", "cell_text", "install_table", "run_command"]


class SourceFileError(Exception):
    """An official source file cannot be imported: `<file>: row <n>: column <name>: <problem>`."""

    def __init__(self, file: str, row: int | str, column: str, problem: str) -> None:
        super().__init__(f"{file}: row {row}: column {column}: {problem}")


def cell_text(value: Any) -> str:
    """A workbook cell as text: None -> '', whole floats without `.0`, stripped."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def install_table(
    stage: Path,
    out_dir: Path,
    replaced: Collection[str],
    *,
    rule_ids: Collection[str] | None = None,
) -> RuleTable:
    """Prove the table in `stage` loads, then write it into `out_dir`, and load that.

    `replaced` names the top-level files the import rebuilt: they are always written; any other
    file only where `out_dir` lacks it. Each file goes through a `.tmp` sibling renamed into place.
    """
    load_table(stage, rule_ids=rule_ids)
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
    return load_table(out_dir, rule_ids=rule_ids)


def run_command(
    parser: argparse.ArgumentParser,
    argv: list[str],
    file_options: Sequence[str],
    run: Callable[[argparse.Namespace], str],
) -> int:
    """Parse `argv`, check the files the `file_options` name exist, print what `run` returns.

    0 done, 1 a bad file (`SourceFileError` or `RuleTableError`, printed), 2 usage (argparse's
    usage, or a file given that does not exist).
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage
        return 0 if exc.code == 0 else 2
    for option in file_options:
        path: Path | None = getattr(args, option)
        if path is not None and not path.is_file():
            print(f"{parser.prog}: --{option}: no such file: {path}", file=sys.stderr)
            return 2
    try:
        done = run(args)
    except (SourceFileError, RuleTableError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(done)
    return 0
