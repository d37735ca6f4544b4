"""Reading an X12 file with pyx12: each segment with its position, its loop path and the
validation errors pyx12 reported at it.

pyx12 does the parsing and the validation against its 005010X222A1 map (envelopes and their
counts, loop structure, mandatory segments, element types, lengths and code lists). This module
only turns what pyx12 yields into plain records and words each error without the element's
value: a bad value may be a member ID or a birth date, and errors go to a terminal or a log.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

__all__ = [
    "EndOfFile",
    "MissingExtra",
    "SegmentData",
    "SegmentRecord",
    "X12Error",
    "X12Unreadable",
    "read_segments",
    "read_text_segments",
    "require_pyx12",
]

Level = Literal["interchange", "group", "transaction", "segment", "element"]


class SegmentData(Protocol):
    """What the mapping reads from a segment: `get_value("SV101-2")` (pyx12's reference form)."""

    def get_value(self, ref_des: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class X12Error:
    level: Level
    code: str
    """The X12 acknowledgement code pyx12 gave (TA1/999 code lists), or pyx12's own code."""
    message: str
    """Never holds an element's value."""
    element: str | None = None
    """The element's reference designator (e.g. `DTP03`) for element errors."""


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    position: int
    """1-based position of the segment in the file (X12 files often have no line breaks)."""
    segment_id: str
    loops: tuple[str, ...]
    """The map path's loops, e.g. (`ISA_LOOP`, `GS_LOOP`, `ST_LOOP`, `DETAIL`, `2000A`, ...)."""
    data: SegmentData
    errors: tuple[X12Error, ...]


@dataclass(frozen=True, slots=True)
class EndOfFile:
    """Errors pyx12 reports after the last segment (a missing IEA, an unclosed loop)."""

    position: int
    errors: tuple[X12Error, ...]


class X12Unreadable(Exception):
    """pyx12 could not go on reading the file (not X12, a broken ISA, an unknown map)."""

    def __init__(self, position: int, detail: str) -> None:
        super().__init__(detail)
        self.position = position
        self.detail = detail


class MissingExtra(Exception):
    """pyx12 is not installed: the `x12` extra of the package."""


_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{1,2}")
"""What an X12 segment id looks like; anything else is shown as `?` (it may be stray text)."""

# Segment-level codes whose pyx12 message is built from map names, ids and counts only.
_SAFE_SEGMENT_CODES = frozenset({"2", "3", "4", "5", "8", "HL1", "HL2", "LX", "SEG1"})
_SEGMENT_WORDS = {
    "1": "unrecognized segment or segment not expected here",
    "6": "segment not in the defined transaction set",
    "7": "segment not in proper sequence",
}
# 999 IK403 element error codes, worded here so that the bad value is never repeated.
_ELEMENT_WORDS = {
    "1": "required data element missing",
    "2": "conditional required data element missing",
    "3": "too many data elements",
    "4": "data element too short",
    "5": "data element too long",
    "6": "invalid character in data element",
    "7": "invalid code value",
    "8": "invalid date",
    "9": "invalid time",
    "10": "exclusion condition violated (element marked not used)",
    "12": "too many repetitions",
    "13": "too many components",
}


def require_pyx12() -> None:
    """Raise `MissingExtra`, with what to install, when pyx12 is not there."""
    _pyx12()


def _pyx12() -> tuple[Any, Any, Any, Any]:
    try:
        import pyx12.error_handler
        import pyx12.errors
        import pyx12.params
        import pyx12.x12context
    except ImportError as exc:
        raise MissingExtra(
            "reading X12 needs pyx12: pip install 'claims-validator[x12]'"
        ) from exc
    return pyx12.params, pyx12.error_handler, pyx12.x12context, pyx12.errors


def _drain(errh: Any, segment_id: str) -> tuple[X12Error, ...]:
    found: list[X12Error] = []
    envelope: tuple[tuple[Level, list[tuple[str, str]]], ...] = (
        ("interchange", errh.err_isa),
        ("group", errh.err_gs),
        ("transaction", errh.err_st),
    )
    for level, items in envelope:
        # Envelope messages name control numbers and counts, never claim data.
        found.extend(X12Error(level, str(code), str(text)) for code, text in items)
    for code, text, *_ in errh.err_seg:
        code = str(code)
        if code in _SAFE_SEGMENT_CODES:
            message = str(text)
        else:
            message = f"{segment_id}: {_SEGMENT_WORDS.get(code, 'segment error')}"
        found.append(X12Error("segment", code, message))
    for code, _text, _value, refdes in errh.err_ele:
        code = str(code)
        words = _ELEMENT_WORDS.get(code, "data element error")
        where = refdes or segment_id
        found.append(X12Error("element", code, f"{where}: {words}", refdes))
    errh.reset()
    return tuple(found)


def read_segments(path: Path) -> Iterator[SegmentRecord | EndOfFile]:
    """Every segment of the file in order, then one `EndOfFile`.

    Raises `X12Unreadable` where pyx12 cannot go on, and `MissingExtra` without pyx12.
    """
    pyx12 = _pyx12()
    with path.open(encoding="ascii", errors="replace", newline="") as handle:
        yield from _read(pyx12, handle)


def read_text_segments(text: str) -> Iterator[SegmentRecord | EndOfFile]:
    """`read_segments` for X12 text already in memory (an HTTP request body)."""
    pyx12 = _pyx12()
    yield from _read(pyx12, io.StringIO(text, newline=""))


def _read(pyx12: tuple[Any, Any, Any, Any], handle: Any) -> Iterator[SegmentRecord | EndOfFile]:
    params, error_handler, x12context, errors = pyx12
    errh = error_handler.errh_list()
    position = 0
    try:
        reader = x12context.X12ContextReader(params.params(), errh, handle)
        for node in reader.iter_segments():
            position = int(node.cur_line_number or position + 1)
            seg = node.seg_data
            segment_id = str(seg.get_seg_id())
            if not _SEGMENT_ID.fullmatch(segment_id):
                segment_id = "?"
            loops = tuple(
                str(part).split("[", 1)[0]
                for part in str(node.x12_map_node.get_path()).strip("/").split("/")[:-1]
            )
            yield SegmentRecord(position, segment_id, loops, seg, _drain(errh, segment_id))
        reader.src.cleanup()  # trailers (SE, GE, IEA) still missing at the end of the file
        errh.handle_errors(reader.src.pop_errors())
    except (errors.X12Error, errors.EngineError) as exc:
        # pyx12's fatal messages quote envelope segments or map names, not claim data.
        raise X12Unreadable(position + 1, str(exc)) from exc
    yield EndOfFile(position + 1, _drain(errh, "end of file"))
