"""The ICD-10-CM editions of the rule table: `icd10cm.txt.gz` checked against its source file.

Built by `claims-validator rules import-icd10cm` (service.ruletable.importers.icd10cm) from the
public-domain code sets; the service needs no ICD package at run time. The file is checked
before use: its sha256 and code count against `icd10cm_source.json`, one flag per edition on
every line, editions in date order without overlap. A table compiles the same bytes once per
process (the cache is keyed by the bytes), so tests and the service share one code set.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
import zlib
from collections.abc import Mapping

from pydantic import TypeAdapter

from service.ruletable.code_files import ICD_DATA_FILE, ICD_SOURCE_FILE, IcdSource
from service.ruletable.compiled.diagnoses import CodeSetEdition, DiagnosisCodeSet
from service.ruletable.files import RuleTableError, json_data, validated

__all__ = ["load_icd10cm"]

_SOURCE = TypeAdapter(IcdSource)
_LINE_RE = re.compile(r"([A-Z][0-9A-Z]{2}[0-9A-Z]{0,4}) ([bh.]+)")


def load_icd10cm(files: Mapping[str, bytes]) -> tuple[DiagnosisCodeSet, IcdSource]:
    """The shipped editions among `files` (name -> bytes of the table directory)."""
    for name in (ICD_DATA_FILE, ICD_SOURCE_FILE):
        if name not in files:
            raise RuleTableError(name, "-", "-", "file not found in the rule-table directory")
    source = validated(ICD_SOURCE_FILE, _SOURCE, json_data(files, ICD_SOURCE_FILE), "none")
    editions = source.editions
    for i, e in enumerate(editions):
        if e.effective_to < e.effective_from:
            raise RuleTableError(
                ICD_SOURCE_FILE, "-", f"editions.{i}.effective_to", "before effective_from"
            )
        if i and e.effective_from <= editions[i - 1].effective_to:
            raise RuleTableError(
                ICD_SOURCE_FILE, "-", f"editions.{i}.effective_from",
                "editions must be in date order without overlap",
            )
    raw = files[ICD_DATA_FILE]
    if hashlib.sha256(raw).hexdigest() != source.data_sha256:
        raise RuleTableError(
            ICD_SOURCE_FILE, "-", "data_sha256", f"does not match {ICD_DATA_FILE}; re-run "
            "`claims-validator rules import-icd10cm`",
        )
    codes = _compiled(raw, source.model_dump_json())
    if len(codes.flags) != source.codes:
        raise RuleTableError(
            ICD_SOURCE_FILE, "-", "codes", f"says {source.codes} but {ICD_DATA_FILE} has "
            f"{len(codes.flags)}",
        )
    return codes, source


@functools.lru_cache(maxsize=4)
def _compiled(raw: bytes, source_json: str) -> DiagnosisCodeSet:
    source = IcdSource.model_validate_json(source_json)
    width = len(source.editions)
    try:
        text = gzip.decompress(raw).decode("ascii")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise RuleTableError(ICD_DATA_FILE, "-", "-", f"not gzip'd ASCII text: {exc}") from None
    flags: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _LINE_RE.fullmatch(line)
        if match is None or len(match.group(2)) != width:
            raise RuleTableError(
                ICD_DATA_FILE, number, "-",
                f"expected `CODE FLAGS` with {width} flags (b, h or .), got {line[:20]!r}",
            )
        code, found = match.groups()
        if code in flags:
            raise RuleTableError(ICD_DATA_FILE, number, "code", f"{code} is listed twice")
        flags[code] = found
    return DiagnosisCodeSet(
        editions=tuple(
            CodeSetEdition(e.edition, e.label, e.effective_from, e.effective_to)
            for e in source.editions
        ),
        flags=flags,
        source_file=f"{ICD_DATA_FILE} ({', '.join(e.source_file for e in source.editions)})",
        source_sha256=source.data_sha256,
    )
