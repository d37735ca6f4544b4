"""Where each shipped table came from: named in `claims-validator rules show`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Provenance"]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one shipped table came from."""

    table: str
    source_file: str
    release: str
    source_sha256: str
    rows: int
