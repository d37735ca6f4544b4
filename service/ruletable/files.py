"""Reading the rule-table data files: text, YAML, JSON and CSV, validated by pydantic models.

Every problem raises `RuleTableError` naming the file, the row and the field, the same way for
every file (the loader's own tables in `service.ruletable.load` and the issue-4 data in
`service.ruletable.policies`), so the person editing the data can find the mistake.
Files come as a mapping of relative name -> bytes (the loader reads the directory once).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

from service.validation_errors import dotted_path, error_message

__all__ = [
    "RowStyle",
    "RuleTableError",
    "csv_records",
    "json_data",
    "text",
    "unique_by",
    "validated",
    "yaml_data",
]

_M = TypeVar("_M")
_T = TypeVar("_T")

_YamlLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

RowStyle = Literal["csv", "list", "mapping", "none"]
"""Which row a validation error is reported on:
- `csv`: the data row of a CSV file (list index + 2: row 1 is the header);
- `list`: the entry of a YAML list (index + 1);
- `mapping`: in a YAML/JSON mapping, the entry of the list named first (index + 1), else 1;
- `none`: no row (`-`); the field is the whole path."""


class RuleTableError(Exception):
    """The rule-table data is invalid: `<file>: row <n>: field <name>: <problem>`."""

    def __init__(self, file: str, row: int | str, field: str, problem: str) -> None:
        super().__init__(f"{file}: row {row}: field {field}: {problem}")
        self.file = file
        self.row = row
        self.field = field
        self.problem = problem


def text(files: Mapping[str, bytes], name: str) -> str:
    """The file as UTF-8 text; otherwise the error names the line of the first bad byte."""
    raw = files[name]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = raw[: exc.start].count(b"\n") + 1
        raise RuleTableError(name, row, "-", "not UTF-8 text") from exc


def yaml_data(files: Mapping[str, bytes], name: str) -> Any:
    """The YAML document of the file (safe loader, the C one when PyYAML has it)."""
    try:
        return yaml.load(text(files, name), Loader=_YamlLoader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row: int | str = mark.line + 1 if mark is not None else "-"
        raise RuleTableError(name, row, "-", f"not valid YAML: {exc}") from None
    except ValueError as exc:
        # PyYAML's timestamp constructor raises a plain ValueError for an impossible date
        # written unquoted (2024-02-30); it does not say where, so the message quotes it.
        raise RuleTableError(name, "-", "-", f"not a valid value: {exc}") from None


def json_data(files: Mapping[str, bytes], name: str) -> Any:
    """The JSON document of the file."""
    try:
        return json.loads(text(files, name))
    except json.JSONDecodeError as exc:
        raise RuleTableError(name, exc.lineno, "-", f"not valid JSON: {exc.msg}") from None


def csv_records(
    files: Mapping[str, bytes], name: str, columns: Sequence[str]
) -> list[dict[str, str]]:
    """The data rows as column -> cell; the header must hold each of `columns` once, no other."""
    reader = csv.reader(io.StringIO(text(files, name), newline=""))
    header = next(reader, None)
    if header is None:
        raise RuleTableError(name, 1, "-", "empty file (no header row)")
    for column in columns:
        if column not in header:
            raise RuleTableError(name, 1, column, "missing column")
    for column in header:
        if column not in columns:
            raise RuleTableError(name, 1, column or "-", "unexpected column")
        if header.count(column) > 1:
            raise RuleTableError(name, 1, column, "column appears twice")
    width = len(header)
    records: list[dict[str, str]] = []
    for number, cells in enumerate(reader, start=2):
        if len(cells) != width:
            raise RuleTableError(name, number, "-", f"expected {width} values, found {len(cells)}")
        records.append(dict(zip(header, cells, strict=True)))
    return records


def validated(name: str, adapter: TypeAdapter[_M], data: object, rows: RowStyle) -> _M:
    """`data` validated by `adapter`; the first problem (and how many more) as a
    `RuleTableError` whose row follows `rows`."""
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise _error(name, exc, rows) from None


def _error(name: str, exc: ValidationError, rows: RowStyle) -> RuleTableError:
    error = exc.errors()[0]
    loc = list(error["loc"])
    row: int | str = "-"
    at = 1 if rows == "mapping" else 0  # where the row index sits in the location
    index = loc[at] if rows != "none" and len(loc) > at else None
    if isinstance(index, int):
        row = index + (2 if rows == "csv" else 1)
        del loc[at]
    elif rows == "mapping":
        row = 1
    more = exc.error_count() - 1
    problem = error_message(error) + (f" (and {more} more problem(s))" if more else "")
    return RuleTableError(name, row, dotted_path(loc, "-"), problem)


def unique_by(
    name: str, field: str, items: Iterable[_T], key: Callable[[_T], str]
) -> dict[str, _T]:
    """`items` by `key`, in order; a key given twice stops the load, naming the file `name`, the
    item's 1-based position and `field`."""
    out: dict[str, _T] = {}
    for i, item in enumerate(items, start=1):
        k = key(item)
        if k in out:
            raise RuleTableError(name, i, field, "listed twice")
        out[k] = item
    return out
