"""The Kafka benchmark's two measurements (`scripts/bench_kafka.py`): throughput over loaded
claims, and latency at a steady rate."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kafka_env import (  # the scripts folder is not a package
    bootstrap,
    claim_event,
    group_stable_at,
    peak_rss_mb,
    read_all,
    spawn_instances,
    stop_all,
    wait_for_records,
)


async def throughput(
    args: list[str],
    env: dict[str, str],
    outputs: Sequence[str],
    expected: int,
    log_stem: Path,
    instances: int,
    before_stop: Any = None,
) -> tuple[float, float, int, int]:
    """(records/s, peak RSS MB of the largest instance, distinct keys out, records out).

    The rate is taken over the output records stamped from the later of the first output and
    the moment the consumer group was Stable with all `instances` members, to the last one: with
    one instance that is first -> last output; with more, the start-up rebalance (the first
    instance begins alone) is left out, so the figure is the group's steady rate."""
    procs = spawn_instances(args, env, instances, log_stem)
    try:
        stable = asyncio.create_task(
            group_stable_at(env["CLAIMS_CONSUMER__GROUP_ID"], instances, procs)
        )
        await wait_for_records(outputs, expected, timeout_s=600, procs=procs)
        records = await read_all(outputs)
        keys = {key for _, key, _ in records}
        deadline = time.monotonic() + 60
        while len(keys) < expected:  # a rebalance redelivered (and duplicated) some
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(keys)} of {expected} keys on {list(outputs)}")
            await asyncio.sleep(1)
            records = await read_all(outputs)
            keys = {key for _, key, _ in records}
        rss = max(peak_rss_mb(p.pid) for p in procs)
        stable_ms = await stable
        if before_stop is not None:
            await before_stop()
    finally:
        stop_all(procs, log_stem)
    stamps = [ts for _, _, ts in records]
    start_ms = max(min(stamps), stable_ms)
    counted = sum(ts >= start_ms for ts in stamps)
    span_s = (max(stamps) - start_ms) / 1000
    if counted < len(records) / 3 or span_s <= 0:
        # A member joining a busy group waits for the others' next heartbeat (3 s).
        raise RuntimeError(
            f"only {counted} of {len(records)} outputs came after the group of {instances} was "
            "stable: use more --claims"
        )
    return counted / span_s, rss, len(keys), len(records)


async def latency(
    topics: dict[str, str],
    env: dict[str, str],
    rate: int,
    seconds: float,
    log_stem: Path,
    run: str,
    instances: int,
) -> tuple[float, float, float, int]:
    """(p50 ms, p99 ms, peak RSS MB, claims): input timestamp -> verdict arrival."""
    outputs = [topics["accepted"], topics["flagged"], topics["dead_letter"]]
    procs = spawn_instances(
        [sys.executable, "-m", "service", "serve"], env, instances, log_stem
    )
    consumer = AIOKafkaConsumer(
        *outputs, bootstrap_servers=bootstrap(), auto_offset_reset="latest",
        group_id=f"bench-{run}-latency-reader", fetch_max_wait_ms=50,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), linger_ms=0, acks=1)
    await consumer.start()
    await producer.start()
    sent: dict[bytes, int] = {}
    arrived: dict[bytes, float] = {}
    stamped: dict[bytes, int] = {}

    async def read() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            now_ms = time.time() * 1000
            for records in batch.values():
                for r in records:
                    arrived.setdefault(r.key, now_ms)
                    stamped.setdefault(r.key, r.timestamp)

    reader = asyncio.create_task(read())
    try:
        # Warm-up: until every instance has joined the group and one answers.
        await group_stable_at(env["CLAIMS_CONSUMER__GROUP_ID"], instances, procs)
        warm = 0
        deadline = time.monotonic() + 60
        while not any(k.startswith(b"warm-") for k in arrived):
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not answer the warm-up claims")
            key = f"warm-{warm}".encode()
            await producer.send(topics["submitted"], claim_event(warm, "warm"), key=key)
            warm += 1
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        count = int(rate * seconds)
        tick = 0.01
        per_tick = max(1, round(rate * tick))
        start = time.perf_counter()
        i = 0
        while i < count:
            target = start + (i / rate)
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            for _ in range(min(per_tick, count - i)):
                key = f"{run}-CLM-{i:08d}".encode()
                ts = int(time.time() * 1000)
                sent[key] = ts
                await producer.send(
                    topics["submitted"], claim_event(i, run), key=key, timestamp_ms=ts
                )
                i += 1
        deadline = time.monotonic() + 30
        while any(k not in arrived for k in sent):
            if time.monotonic() > deadline:
                missing = sum(k not in arrived for k in sent)
                raise TimeoutError(f"{missing} claims got no verdict")
            await asyncio.sleep(0.1)
        rss = max(peak_rss_mb(p.pid) for p in procs)
    finally:
        reader.cancel()
        await producer.stop()
        await consumer.stop()
        stop_all(procs, log_stem)
    lat = sorted(arrived[k] - ts for k, ts in sent.items())
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    to_verdict = statistics.median(stamped[k] - ts for k, ts in sent.items())
    print(
        f"  latency split (medians): input -> verdict produced {to_verdict:.1f} ms, "
        f"-> verdict read {p50 - to_verdict:.1f} ms",
        file=sys.stderr,
    )
    return p50, p99, rss, len(sent)


