"""How the data files write codes and dates: HCPCS/CPT codes and ranges of them, ISO dates.

Shared by the file models, the loaders and the importers of official files.
"""

from __future__ import annotations

import re
from datetime import date

__all__ = ["HCPCS_RE", "expand_code_spec", "hcpcs", "optional_date", "parse_iso_date"]

HCPCS_RE = re.compile(r"[0-9A-Z]{5}")
_ISO_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_RANGE_RE = re.compile(r"([0-9A-Z]{5})-([0-9A-Z]{5})")
_MAX_RANGE = 200


def parse_iso_date(value: object) -> date:
    """An ISO `YYYY-MM-DD` date and nothing else (no timestamps, no Julian digits)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_RE.fullmatch(value):
        raise ValueError(f"expected an ISO date YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not a calendar date: {value!r}") from exc


def optional_date(value: object) -> date | None:
    """`parse_iso_date`, where null or an empty CSV cell means no date."""
    if value is None or value == "":
        return None
    return parse_iso_date(value)


def hcpcs(value: str) -> str:
    """`value` when it is a 5-character HCPCS/CPT code; otherwise a ValueError saying so."""
    if not HCPCS_RE.fullmatch(value):
        raise ValueError(f"expected a 5-character HCPCS/CPT code (0-9, A-Z), got {value!r}")
    return value


def expand_code_spec(spec: str) -> tuple[str, ...]:
    """`64490` -> (64490,); `64490-64495` or `0213T-0218T` -> every code of the range.

    A range runs over the digits of codes that share their letters in the same places
    (e.g. `0213T`-`0218T`); anything else, or more than 200 codes, is refused.
    """
    match = _RANGE_RE.fullmatch(spec)
    if match is None:
        return (hcpcs(spec),)
    low, high = match.groups()
    shape_low = re.sub(r"[0-9]", "9", low)
    shape_high = re.sub(r"[0-9]", "9", high)
    if shape_low != shape_high:
        raise ValueError(f"range {spec!r}: both ends must have letters in the same places")
    letters = [(i, ch) for i, ch in enumerate(low) if not ch.isdigit()]
    if any(high[i] != ch for i, ch in letters):
        raise ValueError(f"range {spec!r}: both ends must share their letters")
    digits_low = int("".join(ch for ch in low if ch.isdigit()))
    digits_high = int("".join(ch for ch in high if ch.isdigit()))
    if digits_high < digits_low:
        raise ValueError(f"range {spec!r}: the end is before the start")
    if digits_high - digits_low >= _MAX_RANGE:
        raise ValueError(f"range {spec!r}: more than {_MAX_RANGE} codes")
    width = sum(ch.isdigit() for ch in low)
    codes: list[str] = []
    for number in range(digits_low, digits_high + 1):
        chars = iter(f"{number:0{width}d}")
        codes.append("".join(ch if not ch.isdigit() else next(chars) for ch in low))
    return tuple(codes)
