"""The ICD-10-CM code set as the diagnoses rules read it: codes without dots, in frozen sets."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DiagnosisCodeSet", "icd_display", "icd_key"]


def icd_key(code: str) -> str:
    """The code-set key of a diagnosis as written: `M54.50` and `M5450` -> `M5450`.

    A dot is accepted only where ICD-10-CM puts it, after the third character; anything else is
    kept as is and so will not be found.
    """
    if len(code) > 4 and code[3] == ".":
        return code[:3] + code[4:]
    return code


def icd_display(key: str) -> str:
    """`M5450` -> `M54.50` (the way the code set prints codes)."""
    return key if len(key) <= 3 else f"{key[:3]}.{key[3:]}"


@dataclass(frozen=True, slots=True)
class DiagnosisCodeSet:
    """ICD-10-CM codes without dots: billable leaves, and valid codes that are not billable."""

    release: str
    """Short label for the version string, e.g. `2026apr`."""
    label: str
    """For people, e.g. `ICD-10-CM FY2026 (April 2026 release)`."""
    billable: frozenset[str]
    written: Mapping[str, str]
    """Every billable code as it may be written, with and without the dot -> its key: the hot
    path's one look-up per diagnosis."""
    headers: frozenset[str]
    """Categories and subcategories that have children: valid codes, never billable."""
    ordered: tuple[str, ...]
    """The billable codes, sorted: `billable_under` bisects it (only when writing a finding)."""
    source_file: str
    source_sha256: str

    def billable_under(self, key: str, limit: int = 3) -> tuple[str, ...]:
        """Up to `limit` billable codes that refine the header `key` (dotted, for messages)."""
        at = bisect.bisect_left(self.ordered, key)
        found: list[str] = []
        while at < len(self.ordered) and len(found) < limit and self.ordered[at].startswith(key):
            found.append(icd_display(self.ordered[at]))
            at += 1
        return tuple(found)
