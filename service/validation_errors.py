"""How a pydantic validation error is shown to people: where (a dotted field path) and what.

One spelling for every place that reports schema problems: a malformed claim event
(`service.decode`) and a rule-table data file (`service.ruletable.files`). Neither ever shows
the offending value, which may be patient data.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic_core import ErrorDetails

__all__ = ["dotted_path", "error_message"]


def dotted_path(loc: Iterable[int | str], empty: str) -> str:
    """`('claim', 'service_lines', 1, 'units')` -> `claim.service_lines[1].units`.

    `empty` is what an empty location (the whole document) is called.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or empty


def error_message(error: ErrorDetails) -> str:
    """Pydantic's message, without the `Value error, ` prefix our own validators' text gets.

    Pydantic messages describe the expectation ("Input should be a valid date ..."), never the
    value.
    """
    return error["msg"].removeprefix("Value error, ")
