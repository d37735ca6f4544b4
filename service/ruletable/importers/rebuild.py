"""`claims-validator rules import`: rebuilds the CMS-derived tables from official releases.

The AOC workbook, the RVU file and the place-of-service code set (`importers.aoc`, `.rvu`,
`.pos`) become the small, description-free CSVs the service ships (`aoc.csv`,
`fee_indicators.csv`, `place_of_service.csv`) plus `manifest.json` (source file, release,
sha256, row count, composed version); the result is proven by loading it.

Output is deterministic (no timestamps, fixed row order, `\\n` line ends): importing the same
files twice gives byte-identical data. The AMA CPT description text is never read or written.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import yaml

from service.ruletable.compiled import RuleTable
from service.ruletable.file_models import (
    AOC_COLUMNS,
    AOC_FILE,
    FEE_COLUMNS,
    FEE_FILE,
    MANIFEST_FILE,
    POS_ALLOWED_FILE,
    POS_COLUMNS,
    POS_FILE,
    TABLE_FILES,
    ManifestTable,
    compose_version,
)
from service.ruletable.files import RuleTableError
from service.ruletable.importers.aoc import aoc_quarter, read_aoc
from service.ruletable.importers.common import csv_bytes, file_sha256, install_table, run_command
from service.ruletable.importers.pos import pos_release, read_pos
from service.ruletable.importers.rvu import read_rvu, rvu_release
from service.ruletable.load import DATA_DIR

__all__ = ["ImportReport", "main_import", "run_import"]


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import wrote and the table it produced."""

    out_dir: Path
    imported: tuple[str, ...]
    """Tables rebuilt from the given files (the others were kept)."""
    tables: tuple[ManifestTable, ...]
    table: RuleTable

    def summary(self) -> str:
        lines = [f"rule table {self.table.version} written to {self.out_dir}"]
        for name, entry in zip(TABLE_FILES, self.tables, strict=True):
            state = "imported" if name in self.imported else "kept"
            lines.append(
                f"  {entry.file}: {entry.rows} rows, release {entry.release} "
                f"from {entry.source_file} ({state})"
            )
        lines.append(f"  digest {self.table.digest}")
        return "\n".join(lines)


def run_import(
    aoc: Path | None,
    rvu: Path | None,
    pos: Path | None,
    out_dir: Path,
    *,
    pos_release_label: str | None = None,
    rule_ids: Collection[str],
) -> ImportReport:
    """Rebuild the tables from the given CMS files (any subset; the others are kept).

    The new table is assembled in a scratch copy of `out_dir` (missing files are seeded from
    the shipped data), validated with `load_table`, and only then written into `out_dir`, which
    is loaded once more to prove it. Raises `ImportFileError` or `RuleTableError`.
    """
    out_dir = Path(out_dir)
    kept = _kept_tables(out_dir if (out_dir / MANIFEST_FILE).exists() else DATA_DIR)
    outputs: dict[str, bytes] = {}
    entries: dict[str, ManifestTable] = {}
    if aoc is not None:
        records = read_aoc(aoc)
        outputs[AOC_FILE] = csv_bytes(AOC_COLUMNS, records)
        entries["aoc"] = ManifestTable(
            file=AOC_FILE, source_file=aoc.name, release=aoc_quarter(aoc),
            source_sha256=file_sha256(aoc), rows=len(records),
        )
    if rvu is not None:
        records = read_rvu(rvu)
        outputs[FEE_FILE] = csv_bytes(FEE_COLUMNS, records)
        entries["fee_indicators"] = ManifestTable(
            file=FEE_FILE, source_file=rvu.name, release=rvu_release(rvu),
            source_sha256=file_sha256(rvu), rows=len(records),
        )
    if pos is not None:
        records = read_pos(pos)
        outputs[POS_FILE] = csv_bytes(POS_COLUMNS, records)
        digest = file_sha256(pos)
        release = pos_release(
            pos, pos_release_label, sha256=digest, kept=kept.get("place_of_service")
        )
        entries["place_of_service"] = ManifestTable(
            file=POS_FILE, source_file=pos.name, release=release, source_sha256=digest,
            rows=len(records),
        )
    with tempfile.TemporaryDirectory(prefix="ruletable-") as scratch:
        stage = Path(scratch) / "data"
        _seed(stage, out_dir)
        for name, content in outputs.items():
            (stage / name).write_bytes(content)
        tables = _kept_tables(stage) | entries
        missing = [t for t in TABLE_FILES if t not in tables]
        if missing:
            raise RuleTableError(
                MANIFEST_FILE, 1, f"tables.{missing[0]}",
                "no existing table to keep; give its source file",
            )
        curated = _curated_version(stage)
        manifest = {
            "curated_version": curated,
            "tables": {name: tables[name].model_dump() for name in TABLE_FILES},
            "version": compose_version(tables, curated),
        }
        outputs[MANIFEST_FILE] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        (stage / MANIFEST_FILE).write_bytes(outputs[MANIFEST_FILE])
        table = install_table(stage, out_dir, outputs, rule_ids=rule_ids)
    return ImportReport(
        out_dir=out_dir,
        imported=tuple(name for name in TABLE_FILES if name in entries),
        tables=tuple(tables[name] for name in TABLE_FILES),
        table=table,
    )


def _seed(stage: Path, out_dir: Path) -> None:
    """Copy `out_dir` into the scratch dir; data files and the rule catalogue it lacks as a
    whole (top-level entries) are taken from the shipped data."""
    stage.mkdir(parents=True)
    for source in (out_dir, DATA_DIR):
        if not source.is_dir():
            continue
        for entry in sorted(source.iterdir()):
            target = stage / entry.name
            if target.exists() or entry.name == "__pycache__" or entry.suffix == ".tmp":
                continue
            if entry.is_dir():
                shutil.copytree(entry, target, ignore=shutil.ignore_patterns("__pycache__"))
            elif entry.is_file():
                shutil.copyfile(entry, target)


def _kept_tables(directory: Path) -> dict[str, ManifestTable]:
    path = directory / MANIFEST_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {
            name: ManifestTable.model_validate(entry)
            for name, entry in data.get("tables", {}).items()
            if name in TABLE_FILES
        }
    except (ValueError, AttributeError) as exc:
        raise RuleTableError(
            MANIFEST_FILE, 1, "tables", f"cannot read the existing manifest: {exc}"
        ) from None


def _curated_version(stage: Path) -> int:
    data = yaml.safe_load((stage / POS_ALLOWED_FILE).read_text(encoding="utf-8"))
    version = data.get("curated_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise RuleTableError(POS_ALLOWED_FILE, 1, "curated_version", "missing or not an integer")
    return version


# -- command line ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claims-validator rules import",
        description="Rebuild the rule table from the official CMS files. Tables whose file is "
        "not given are kept as they are.",
    )
    parser.add_argument("--aoc", type=Path, metavar="FILE", help="NCCI add-on code workbook, "
                        "e.g. AOC_V2026Q2-MCR.xlsx")
    parser.add_argument("--rvu", type=Path, metavar="FILE", help="PFS relative value file, "
                        "e.g. PPRRVU25_JAN1.csv")
    parser.add_argument("--pos", type=Path, metavar="FILE", help="place-of-service code set CSV "
                        "(code,name,medicare_pfs_rate)")
    parser.add_argument("--pos-release", metavar="LABEL", help="release of the POS code set "
                        "(default: a year in its file name)")
    parser.add_argument("--out", type=Path, metavar="DIR", default=DATA_DIR,
                        help="table directory (default: the shipped data)")
    return parser


def main_import(argv: list[str], *, rule_ids: Collection[str]) -> int:
    """`claims-validator rules import`: 0 done, 1 a bad file (named with row/column), 2 usage.

    `rule_ids`: the rules the new table's catalogue must cover (every rule the engine emits).
    """

    def run(args: argparse.Namespace) -> str:
        return run_import(
            args.aoc, args.rvu, args.pos, args.out, pos_release_label=args.pos_release,
            rule_ids=rule_ids,
        ).summary()

    return run_command(_parser(), argv, ("aoc", "rvu", "pos"), run)
