"""The verdict log path: `log_verdicts()` over a batch against one bound-logger call per line.

Usage: python scripts/bench_logs.py [--lines 1000] [--repeat 5]
Prints microseconds per line for each, with the JSON pipeline `serve` configures.
"""

from __future__ import annotations

import argparse
import io
import statistics
import timeit

import structlog

from service.logs import VERDICT_LOGGER, configure_logging, flush_logs, log_verdicts
from service.settings import LogSettings, Settings

FIELDS = {
    "claim_id": "CLM-000001",
    "verdict": "flagged",
    "rule_ids": ["ADDON_WITHOUT_PRIMARY"],
    "rule_table_version": "aoc-2026q2",
    "event_id": "7c8f6a52-90d4-5b84-8e55-3b1c0d7f4a10",
    "topic": "claims.submitted",
    "partition": 1,
    "offset": 123456,
    "published_to": "claims.flagged",
    "duration_ms": 0.021,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    stream = io.StringIO()
    configure_logging(Settings(log=LogSettings(format="json")), stream=stream)
    lines = [FIELDS] * args.lines
    logger = structlog.get_logger(VERDICT_LOGGER)

    def batch() -> None:
        log_verdicts(lines)
        flush_logs()
        stream.seek(0)
        stream.truncate()

    def per_line() -> None:
        for fields in lines:
            logger.info("verdict", **fields)
        flush_logs()
        stream.seek(0)
        stream.truncate()

    for name, run in (("log_verdicts (batch)", batch), ("bound logger per line", per_line)):
        times = timeit.repeat(run, number=10, repeat=args.repeat)
        per = statistics.median(times) / 10 / args.lines * 1e6
        print(f"{name:<24} {per:6.2f} us/line (median of {args.repeat})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
