"""The engine's import contract names every module it must not import: a module added to the
service later is covered too (import-linter has no allow-list contract, so its forbidden list is
checked against the tree)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"service.engine", "service.models", "service.limits", "service.ruletable.compiled"}
"""What the engine may import: itself, the event models (with their limits) and the compiled
table."""


def _modules(package: Path, prefix: str) -> set[str]:
    found = set()
    for entry in package.iterdir():
        if entry.name.startswith(("_", ".")) or entry.name == "data":
            continue
        if entry.suffix == ".py" or (entry.is_dir() and (entry / "__init__.py").is_file()):
            found.add(f"{prefix}.{entry.stem if entry.suffix == '.py' else entry.name}")
    return found


def test_the_engine_contract_forbids_every_module_but_the_allowed_ones() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [engine] = [c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "pure-engine"]
    service = ROOT / "service"
    every = _modules(service, "service") - {"service.ruletable"}
    every |= _modules(service / "ruletable", "service.ruletable")
    every.add("service.__main__")
    assert sorted(every - ALLOWED) == sorted(engine["forbidden_modules"])
