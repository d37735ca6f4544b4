"""Engine benchmark: claims per second on one core, engine alone and decode + evaluate + encode.

Typical claims: 3 service lines of interventional spine codes (64490/64491 with 50 and KX, an
office visit), across the five named payers; a quarter of them are flagged.
Run: `python scripts/bench_engine.py [--claims N] [--repeat R]`; pin one core: `taskset -c 0`.
Targets (issue 2): 100,000 claims/s engine alone; 30,000 claims/s with decode and encode.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from service.decode import Readable, decode
from service.engine import evaluate
from service.tables import default_table
from service.verdicts import judge

PAYERS = ("MEDICARE", "AETNA", "BCBS", "CIGNA", "UHC")
CERVICAL = ("M47.812", "M54.2")
LUMBAR = ("M47.816", "M54.50")
Line = tuple[str, tuple[str, ...]]
VARIANTS: tuple[tuple[tuple[Line, ...], tuple[str, ...]], ...] = (
    ((("64490", ("50", "KX")), ("64491", ("50", "KX")), ("99213", ("25",))), CERVICAL),
    ((("64493", ("RT", "KX")), ("64494", ("RT", "KX")), ("99213", ("25",))), LUMBAR),
    ((("64490", ("LT", "KX")), ("64491", ("LT", "KX")), ("99214", ("25",))), CERVICAL),
    ((("64483", ("RT",)), ("64484", ("RT",)), ("99213", ("25",))), LUMBAR),
    ((("64493", ("50", "KX")), ("64494", ("50", "KX")), ("99212", ("25",))), LUMBAR),
    ((("20553", ()), ("99213", ("25",)), ("64490", ("50", "KX"))), CERVICAL),
    # flagged: add-ons without their primary; 51 on an add-on with separately billed imaging
    ((("64491", ("50",)), ("64492", ("50",)), ("99213", ())), CERVICAL),
    ((("64490", ("KX",)), ("64491", ("51", "KX")), ("77003", ())), CERVICAL),
)


def make_event(i: int) -> dict[str, Any]:
    lines, diagnoses = VARIANTS[i % len(VARIANTS)]
    return {
        "event_id": f"bench-{i:08d}",
        "event_type": "claim.submitted",
        "schema_version": 1,
        "occurred_at": "2025-03-04T15:02:11Z",
        "claim": {
            "claim_id": f"CLM-BENCH-{i:08d}",
            "payer_id": PAYERS[i % len(PAYERS)],
            "patient": {"member_id": f"BENCH{i:06d}", "birth_date": "1951-07-14"},
            "billing_provider_npi": "1234567893",
            "rendering_provider": {"npi": "1234567893", "taxonomy_code": "208VP0014X"},
            "diagnosis_codes": list(diagnoses),
            "service_lines": [
                {
                    "line_number": n,
                    "procedure_code": code,
                    "modifiers": list(mods),
                    "units": 1,
                    "place_of_service": "11",
                    "service_date": "2025-03-04",
                    "diagnosis_pointers": [1, 2],
                    "charge_amount": "425.00",
                }
                for n, (code, mods) in enumerate(lines, 1)
            ],
        },
    }


def best_rate(fn: Any, n: int, repeat: int) -> tuple[float, list[float]]:
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates), rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    table = default_table()
    raws = [json.dumps(make_event(i)).encode() for i in range(args.claims)]
    claims = []
    for raw in raws:
        decoded = decode(raw)
        assert isinstance(decoded, Readable), decoded
        claims.append(decoded.event.claim)
    flagged = sum(any(f.severity == "error" for f in evaluate(c, table)) for c in claims)
    now = datetime.now(UTC)
    # The service freezes its start-up objects (rule table) out of the cyclic GC the same way;
    # here it also keeps the pre-built inputs from being re-scanned on every collection.
    gc.freeze()

    def engine_only() -> None:
        for claim in claims:
            evaluate(claim, table)

    def end_to_end() -> None:
        for raw in raws:
            decoded = decode(raw)
            assert isinstance(decoded, Readable)
            judge(decoded.event, table, now=now).model_dump_json()

    engine_median, engine_runs = best_rate(engine_only, len(claims), args.repeat)
    e2e_median, e2e_runs = best_rate(end_to_end, len(raws), args.repeat)
    result = {
        "claims": len(claims),
        "flagged_share": round(flagged / len(claims), 3),
        "rule_table_version": table.version,
        "engine_claims_per_s_median": round(engine_median),
        "engine_runs": [round(r) for r in engine_runs],
        "decode_evaluate_encode_claims_per_s_median": round(e2e_median),
        "decode_evaluate_encode_runs": [round(r) for r in e2e_runs],
        "targets": {"engine": 100_000, "decode_evaluate_encode": 30_000},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
