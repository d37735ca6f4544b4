"""The README's fault-suite table from the figures the last run of `pytest -m faults` wrote.

Usage: python scripts/fault_table.py [.cache/fault-report.json]
Prints a Markdown table: scenario, claims in, verdicts out, lost, duplicated, time to recover.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPORT = Path(__file__).resolve().parent.parent / ".cache" / "fault-report.json"


def recover_text(figures: dict[str, Any]) -> str:
    times = figures.get("recover_s")
    if not times:
        return "n/a"
    low, high = f"{min(times):.1f}", f"{max(times):.1f}"
    span = low if low == high else f"{low}-{high}"
    return f"{span} s" if len(times) == 1 else f"{span} s ({len(times)} faults)"


def row(scenario: str, figures: dict[str, Any]) -> str:
    out = figures.get("outcome")
    verdicts = f"{figures['verdicts_out']:,}"
    if figures.get("dead_letters"):
        verdicts += f" + {figures['dead_letters']:,} dead letter(s)"
    if out:
        verdicts += f" (poison record: {out})"
    return (
        f"| {scenario} | {figures['claims_in']:,} | {verdicts} | {figures['lost']:,} "
        f"| {figures['duplicated']:,} | {recover_text(figures)} |"
    )


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else REPORT
    report: dict[str, dict[str, Any]] = json.loads(path.read_text())
    print("| scenario | claims in | verdicts out | lost | duplicated | time to recover |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for scenario in sorted(report, key=lambda s: (s.startswith("poison"), s)):
        print(row(scenario, report[scenario]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
