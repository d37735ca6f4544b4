"""The partition of a keyed record: `service.packing.key_partition` against aiokafka's
`DefaultPartitioner` (pure Python murmur2), over claim-id keys.

Usage: python scripts/bench_partitioner.py [--keys 100000] [--partitions 12] [--repeat 5]
Prints microseconds per key for each, after checking that both pick the same partitions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit

from aiokafka.partitioner import DefaultPartitioner  # type: ignore[import-untyped]

from service.packing import key_partition


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    keys = [f"CLM-BENCH-{i:08d}".encode() for i in range(args.keys)]
    partitions = list(range(args.partitions))
    default = DefaultPartitioner()
    if [default(k, partitions, partitions) for k in keys] != [
        key_partition(k, partitions) for k in keys
    ]:
        raise SystemExit("the two partitioners disagree")

    def per_key(run: object) -> float:
        times = timeit.repeat(run, number=1, repeat=args.repeat)  # type: ignore[arg-type]
        return statistics.median(times) / len(keys) * 1e6

    result = {
        "keys": len(keys),
        "partitions": args.partitions,
        "aiokafka_default_partitioner_us_per_key": round(
            per_key(lambda: [default(k, partitions, partitions) for k in keys]), 3
        ),
        "key_partition_us_per_key": round(
            per_key(lambda: [key_partition(k, partitions) for k in keys]), 3
        ),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
