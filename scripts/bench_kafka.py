"""Kafka benchmark of the real service: throughput, pass-through ratio, latency, memory.

One run, against the broker in BENCH_BOOTSTRAP (else CLAIMS_TEST_BOOTSTRAP, else the local
broker of scripts/kafka-local.sh on 127.0.0.1:19092):

1. creates fresh 3-partition topics and loads N realistic 3-line claims (a share flagged);
2. runs the real service (`python -m service serve`, subprocesses, so their RSS is in /proc;
   `--instances N` of them in one consumer group) over them and measures claims/s from the
   verdict record timestamps (set by the service's producer), then checks every claim got a
   verdict. With one instance that is first -> last verdict. With more, the first instance
   starts alone and the others join at its next heartbeat (3 s), so the rate is taken from the
   moment the group is seen Stable with every member assigned (the group's steady rate); use
   enough --claims that most outputs come after that (the run fails if under a third do):
   the pass-through does ~75,000 records/s alone, so --instances 2 wants --claims 1000000;
3. runs a pass-through consumer over the same records, as many instances: the same FastStream
   batch subscriber, ack policy and `BatchPublisher`/producer (the same record batching),
   republishing each record unchanged without validating; prints service / pass-through;
4. runs the service on a fresh topic fed at a steady 1,000 claims/s for ~20 s and reports
   p50/p99 from each input record's timestamp to its verdict's arrival at a consumer;
5. reports the largest instance's peak RSS (VmHWM) over both service runs.

The services answer /metrics and /health on a free port (CLAIMS_HTTP__PORT=0), as deployed.
`--set NAME=VALUE` passes a setting (CLAIMS_ is prepended) to the service AND the pass-through,
e.g. `--set CONSUMER__BATCH_SIZE=5000`, so the comparison stays fair.

With `--history`, the same run also measures the service with its claim history on
(CLAIMS_HISTORY__*, a fresh database on BENCH_HISTORY_DSN, else CLAIMS_TEST_DSN, else a
durable embedded server of scripts/postgres_local.py of its own: port 15442, data under
.cache/postgres-bench, fsync on; the tests' server runs with fsync off): throughput over the
same loaded records (a new group), latency at the same steady rate, and the database's share
of the batch time (the history round trips' seconds over the batches' seconds, from the
service's /metrics). The claims' members repeat (`--claims-per-member`, default 3: every
claims/3-th claim is the same member's, all on one date of service), so histories are not
empty.

Usage: python scripts/bench_kafka.py [--claims 200000] [--repeat 3] [--latency-seconds 20]
                                     [--instances 1] [--set NAME=VALUE ...] [--history]
                                     [--claims-per-member 3]
Prints a table per run (and of medians with --repeat) and one JSON document at the end.
Internal: `python scripts/bench_kafka.py passthrough` is the pass-through consumer process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

from service.settings import KafkaSettings
from service.topics import create_topics as service_topics_create
from service.topics import delete_topics as service_topics_delete

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import make_event  # the scripts folder is not a package

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parent.parent
PARTITIONS = 3


def bootstrap() -> str:
    return (
        os.environ.get("BENCH_BOOTSTRAP")
        or os.environ.get("CLAIMS_TEST_BOOTSTRAP")
        or "127.0.0.1:19092"
    )


MEMBERS = [50_000]
"""Distinct members per run (`--claims / --claims-per-member`): each member's claims come back
as its history once the history is on."""


def claim_event(i: int, run: str) -> bytes:
    """The engine benchmark's typical claims (`scripts/bench_engine.py`), ids unique per run."""
    event = make_event(i)
    event["event_id"] = f"{run}-evt-{i:08d}"
    event["claim"]["claim_id"] = f"{run}-CLM-{i:08d}"
    event["claim"]["patient"]["member_id"] = f"BENCH{run}{i % MEMBERS[0]:07d}"
    return orjson.dumps(event)


async def history_dsn() -> str:
    """A fresh database for one measured service on the server of BENCH_HISTORY_DSN (set by
    main() from CLAIMS_TEST_DSN, else the benchmark's own durable embedded server)."""
    import asyncpg

    server = os.environ["BENCH_HISTORY_DSN"]
    name = f"bench_{uuid.uuid4().hex[:10]}"

    connection = await asyncpg.connect(server)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return server.rsplit("/", 1)[0] + f"/{name}"


async def durability(dsn: str) -> str:
    """The history server's commit durability, printed beside the figures: a server with
    fsync off (the test server of scripts/postgres_local.py by default) would lose committed
    history in a crash, so its figures are not the service's."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        fsync = await connection.fetchval("SHOW fsync")
        synchronous = await connection.fetchval("SHOW synchronous_commit")
    finally:
        await connection.close()
    return f"fsync={fsync}, synchronous_commit={synchronous}"


BENCH_POSTGRES = {
    "POSTGRES_LOCAL_PORT": "15442",
    "POSTGRES_LOCAL_DIR": str(REPO / ".cache" / "postgres-bench"),
    "POSTGRES_LOCAL_DURABLE": "1",
}
"""The benchmark's own embedded server: durable, as a deployment's, apart from the tests'."""


def history_overrides(dsn: str, port: int) -> dict[str, str]:
    return {
        "CLAIMS_HISTORY__ENABLED": "true",
        "CLAIMS_HISTORY__DSN": dsn,
        "CLAIMS_HISTORY__SSL_MODE": "disable",
        "CLAIMS_HISTORY__HMAC_KEY": "benchmark-only-hmac-key-0123456789abcdef",
        "CLAIMS_HTTP__PORT": str(port),
    }


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def metric_sums(port: int, names: Sequence[str]) -> dict[str, float]:
    """`<name>_sum` of each histogram on the service's /metrics."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
    await writer.drain()
    body = (await reader.read()).decode()
    writer.close()
    sums = {}
    for line in body.splitlines():
        for name in names:
            if line.startswith(f"{name}_sum "):
                sums[name] = float(line.split()[1])
    return sums


# ------------------------------------------------------------------ Kafka helpers ----


def _kafka() -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap())


async def create_topics(names: Sequence[str]) -> None:
    await service_topics_create(_kafka(), names, partitions=PARTITIONS)


async def delete_topics(names: Sequence[str]) -> None:
    try:
        await service_topics_delete(_kafka(), names)
    except Exception as exc:  # best effort: a left-over topic only costs disk
        print(f"(could not delete bench topics: {type(exc).__name__})", file=sys.stderr)


async def load(topic: str, count: int, run: str) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap(), linger_ms=5, max_batch_size=262_144, acks=1
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for i in range(count):
            key = f"{run}-CLM-{i:08d}".encode()
            pending.append(await producer.send(topic, claim_event(i, run), key=key))
            if len(pending) >= 5_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def end_offsets_total(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> int:
    tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
    ends = await consumer.end_offsets(tps)
    return int(sum(ends.values()))


async def wait_for_records(
    topics: Sequence[str],
    expected: int,
    timeout_s: float,
    procs: Sequence[subprocess.Popen[bytes]] = (),
) -> None:
    """Poll end offsets (cheap for the broker and for this process) until `expected` arrived;
    fails at once if one of `procs` (the processes producing them) exits."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap())
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while (total := await end_offsets_total(consumer, topics)) < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{total} of {expected} records on {list(topics)}")
            check_running(procs)
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()


async def read_all(topics: Sequence[str]) -> list[tuple[str, bytes | None, int]]:
    """(topic, key, timestamp) of every record on `topics`, read after the measurement."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap(), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[str, bytes | None, int]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for records in batch.values():
                out.extend((r.topic, r.key, r.timestamp) for r in records)
        return out
    finally:
        await consumer.stop()


# ------------------------------------------------------------------ processes ----


def service_env(
    topics: dict[str, str], group: str, overrides: dict[str, str] | None = None
) -> dict[str, str]:
    """The service's environment: bench topics and group, JSON logs, plus `overrides`
    (`CLAIMS_*` names); any other CLAIMS_* variable of this shell is left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
    env.update(
        {
            "CLAIMS_KAFKA__BOOTSTRAP_SERVERS": bootstrap(),
            "CLAIMS_TOPICS__SUBMITTED": topics["submitted"],
            "CLAIMS_TOPICS__ACCEPTED": topics["accepted"],
            "CLAIMS_TOPICS__FLAGGED": topics["flagged"],
            "CLAIMS_TOPICS__DEAD_LETTER": topics["dead_letter"],
            "CLAIMS_CONSUMER__GROUP_ID": group,
            "CLAIMS_LOG__FORMAT": "json",
            # The service answers /metrics and /health as in production, on a free port.
            "CLAIMS_HTTP__PORT": "0",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(overrides or {})
    return env


def spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("wb")
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 30) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout_s)


def spawn_instances(
    args: list[str], env: dict[str, str], count: int, log_stem: Path
) -> list[subprocess.Popen[bytes]]:
    """`count` processes of `args` (one consumer group: they share `env`)."""
    return [
        spawn(args, env, log_stem.with_name(f"{log_stem.name}-{n}.log")) for n in range(count)
    ]


def stop_all(procs: Sequence[subprocess.Popen[bytes]], log_stem: Path) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes = [proc.wait(timeout=30) for proc in procs]
    if any(codes):
        raise RuntimeError(f"{procs[0].args!r} exited {codes}; see {log_stem}-*.log")


def check_running(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited {proc.returncode} early")


async def group_stable_at(
    group: str, members: int, procs: Sequence[subprocess.Popen[bytes]], timeout_s: float = 120
) -> float:
    """Epoch ms at which `group` was first seen Stable with `members` members, each with
    partitions assigned (polled every 50 ms)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            seen = time.time() * 1000
            [response] = await admin.describe_consumer_groups([group])
            [(error, _, state, _, _, described, *_)] = response.groups
            assigned = [m for m in described if len(m[4]) > 0]
            if error == 0 and state == "Stable" and len(assigned) == members == len(described):
                return seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"group {group}: {state} with {len(described)} members")
            check_running(procs)
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


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


# ------------------------------------------------------------------ one run ----


async def one_run(
    claims: int,
    latency_s: float,
    workdir: Path,
    instances: int,
    overrides: dict[str, str],
    history: bool = False,
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    base = f"bench-{run}"
    topics = {
        "submitted": f"{base}.submitted",
        "accepted": f"{base}.accepted",
        "flagged": f"{base}.flagged",
        "dead_letter": f"{base}.dead-letter",
    }
    passthrough_out = f"{base}.passthrough"
    lat_topics = {k: v.replace(base, f"{base}-lat") for k, v in topics.items()}
    hist_lat_topics = {k: v.replace(base, f"{base}-hlat") for k, v in topics.items()}
    hist_outputs = [f"{base}-h.accepted", f"{base}-h.flagged", f"{base}-h.dead-letter"]
    all_topics = [*topics.values(), passthrough_out, *lat_topics.values()]
    if history:
        all_topics += [*hist_lat_topics.values(), *hist_outputs]
    extra: dict[str, Any] = {}
    await create_topics(all_topics)
    try:
        load_s = await load(topics["submitted"], claims, run)
        print(f"[{run}] loaded {claims} claims in {load_s:.1f} s", file=sys.stderr)

        outputs = [topics["accepted"], topics["flagged"], topics["dead_letter"]]
        svc_rate, svc_rss, verdicts, svc_out = await throughput(
            [sys.executable, "-m", "service", "serve"],
            service_env(topics, f"{base}-service", overrides),
            outputs,
            claims,
            workdir / f"{run}-service",
            instances,
        )
        print(
            f"[{run}] service x{instances}: {svc_rate:,.0f} claims/s "
            f"({svc_out - verdicts} duplicate verdicts)",
            file=sys.stderr,
        )

        pt_env = service_env(topics, f"{base}-passthrough", overrides)
        pt_env["BENCH_PASSTHROUGH_TOPIC"] = passthrough_out
        pt_rate, _, _, _ = await throughput(
            [sys.executable, str(SCRIPT), "passthrough"],
            pt_env,
            [passthrough_out],
            claims,
            workdir / f"{run}-passthrough",
            instances,
        )
        print(f"[{run}] pass-through x{instances}: {pt_rate:,.0f} records/s", file=sys.stderr)

        p50, p99, lat_rss, lat_claims = await latency(
            lat_topics,
            service_env(lat_topics, f"{base}-lat-service", overrides),
            rate=1_000,
            seconds=latency_s,
            log_stem=workdir / f"{run}-latency",
            run=run,
            instances=instances,
        )
        print(f"[{run}] latency p50 {p50:.1f} ms, p99 {p99:.1f} ms", file=sys.stderr)
        if history:
            extra = await history_run(
                run, base, topics, hist_outputs, hist_lat_topics, claims, latency_s, workdir,
                instances, overrides,
            )
            extra["history_to_off_ratio"] = round(
                extra["history_claims_per_s"] / svc_rate, 3
            )
    finally:
        await delete_topics(all_topics)
    return {
        "run": run,
        "instances": instances,
        "settings": overrides,
        "claims": claims,
        "verdicts": verdicts,
        "duplicate_verdicts": svc_out - verdicts,
        "service_claims_per_s": round(svc_rate),
        "passthrough_records_per_s": round(pt_rate),
        "ratio": round(svc_rate / pt_rate, 3),
        "latency_rate_per_s": 1_000,
        "latency_claims": lat_claims,
        "latency_p50_ms": round(p50, 1),
        "latency_p99_ms": round(p99, 1),
        "service_peak_rss_mb": round(max(svc_rss, lat_rss), 1),
        **extra,
    }


async def history_run(
    run: str,
    base: str,
    topics: dict[str, str],
    outputs: list[str],
    lat_topics: dict[str, str],
    claims: int,
    latency_s: float,
    workdir: Path,
    instances: int,
    overrides: dict[str, str],
) -> dict[str, Any]:
    """The service with its history on, over the same loaded claims (a new group)."""
    port = free_port()
    env = service_env(
        {**topics, "accepted": outputs[0], "flagged": outputs[1], "dead_letter": outputs[2]},
        f"{base}-history",
        {**overrides, **history_overrides(await history_dsn(), port)},
    )
    sums: dict[str, float] = {}

    async def scrape() -> None:
        sums.update(await metric_sums(
            port, ["claims_validator_history_seconds", "claims_validator_batch_duration_seconds"]
        ))

    rate, rss, _, _ = await throughput(
        [sys.executable, "-m", "service", "serve"], env, outputs, claims,
        workdir / f"{run}-history", 1 if instances == 1 else instances,
        before_stop=scrape if instances == 1 else None,
    )
    share = (
        sums["claims_validator_history_seconds"] / sums["claims_validator_batch_duration_seconds"]
        if sums else float("nan")
    )
    print(f"[{run}] history on: {rate:,.0f} claims/s, database share {share:.1%}",
          file=sys.stderr)
    lat_env = service_env(
        lat_topics, f"{base}-hlat-service",
        {**overrides, **history_overrides(await history_dsn(), free_port())},
    )
    p50, p99, lat_rss, _ = await latency(
        lat_topics, lat_env, rate=1_000, seconds=latency_s,
        log_stem=workdir / f"{run}-history-latency", run=run, instances=instances,
    )
    print(f"[{run}] history on: latency p50 {p50:.1f} ms, p99 {p99:.1f} ms", file=sys.stderr)
    return {
        "history_claims_per_s": round(rate),
        "history_db_share": round(share, 3),
        "history_latency_p50_ms": round(p50, 1),
        "history_latency_p99_ms": round(p99, 1),
        "history_peak_rss_mb": round(max(rss, lat_rss), 1),
    }


ROWS = (
    ("service_claims_per_s", "service claims/s (verdict timestamps)", ">= 20,000"),
    ("passthrough_records_per_s", "pass-through records/s", ""),
    ("ratio", "service / pass-through", ">= 0.80"),
    ("latency_p50_ms", "p50 ms at 1,000 claims/s", ""),
    ("latency_p99_ms", "p99 ms at 1,000 claims/s", "<= 100"),
    ("service_peak_rss_mb", "service peak RSS MB (largest instance)", "<= 250"),
)


def table(title: str, result: dict[str, Any]) -> str:
    lines = [title, f"  {'measure':<40} {'value':>12}  target"]
    for key, label, target in ROWS:
        value = result[key]
        shown = f"{value:,.3f}" if key == "ratio" else f"{value:,}"
        lines.append(f"  {label:<40} {shown:>12}  {target}")
    return "\n".join(lines)


HISTORY_ROWS = (
    ("history_claims_per_s", "history on: claims/s", ""),
    ("history_to_off_ratio", "history on / history off", ">= 0.50"),
    ("history_db_share", "database share of the batch time", ""),
    ("history_latency_p50_ms", "history on: p50 ms at 1,000 claims/s", ""),
    ("history_latency_p99_ms", "history on: p99 ms at 1,000 claims/s", "<= 100"),
    ("history_peak_rss_mb", "history on: peak RSS MB", "<= 250"),
)


def table_history(result: dict[str, Any], database: str) -> str:
    lines = [f"  with the claim history on (PostgreSQL, {database}):"]
    if "fsync=off" in database:
        lines.append("  NOT DURABLE (fsync off): these history figures do not count for targets")
    for key, label, target in HISTORY_ROWS:
        lines.append(f"  {label:<40} {result[key]:>12,}  {target}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="service (and pass-through) processes in one consumer group; the topics have "
        f"{PARTITIONS} partitions",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a service setting for the service AND the pass-through, e.g. "
        "CONSUMER__BATCH_SIZE=2000 (CLAIMS_ is prepended); repeatable",
    )
    parser.add_argument(
        "--claims-per-member",
        type=int,
        default=3,
        help="claims of each member in a run (their history grows with it)",
    )
    parser.add_argument(
        "--history",
        action="store_true",
        help="also run the service with its claim history on (PostgreSQL), beside it off",
    )
    args = parser.parse_args()
    if not 1 <= args.instances <= PARTITIONS:
        parser.error(f"--instances must be 1..{PARTITIONS}")
    overrides: dict[str, str] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--set {item!r}: expected NAME=VALUE")
        overrides[name if name.startswith("CLAIMS_") else f"CLAIMS_{name}"] = value
    MEMBERS[0] = max(1, args.claims // max(1, args.claims_per_member))
    if args.history and not os.environ.get("BENCH_HISTORY_DSN"):
        os.environ["BENCH_HISTORY_DSN"] = os.environ.get("CLAIMS_TEST_DSN") or subprocess.run(
            [sys.executable, str(REPO / "scripts" / "postgres_local.py"), "start"],
            capture_output=True, text=True, check=True, env={**os.environ, **BENCH_POSTGRES},
        ).stdout.strip().splitlines()[-1]
    database = asyncio.run(durability(os.environ["BENCH_HISTORY_DSN"])) if args.history else ""
    workdir = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
    print(f"broker {bootstrap()}, logs in {workdir}", file=sys.stderr)
    results = [
        asyncio.run(
            one_run(
                args.claims, args.latency_seconds, workdir, args.instances, overrides,
                args.history,
            )
        )
        for _ in range(args.repeat)
    ]
    for r in results:
        print(table(f"run {r['run']} ({r['claims']:,} claims, {r['instances']} instance(s))", r))
        if args.history:
            print(table_history(r, database))
    summary: dict[str, Any] = {
        "broker": bootstrap(),
        "claims_per_member": args.claims_per_member,
        "instances": args.instances,
        "settings": overrides,
        **({"history_database": database} if args.history else {}),
        "runs": results,
    }
    if len(results) > 1:
        rows = ROWS + HISTORY_ROWS if args.history else ROWS
        medians = {key: statistics.median(r[key] for r in results) for key, _, _ in rows}
        summary["median"] = medians
        print(table(f"median of {len(results)} runs", medians))
        if args.history:
            print(table_history(medians, database))
    print(json.dumps(summary, indent=2))
    return 0


# ------------------------------------------------------------------ pass-through ----


def passthrough() -> int:
    """The pass-through consumer: the service's own app (subscriber, ack policy, publisher,
    producer) with a judge that copies each record to the output topic unjudged."""
    from datetime import datetime

    from service.app import create_app
    from service.limits import Limits
    from service.logs import configure_logging
    from service.routing import InputRecord, Outcome, OutRecord, Source, Topics
    from service.ruletable.compiled import RuleTable
    from service.serving import serve, tune_gc
    from service.settings import HttpSettings, load_settings

    out_topic = os.environ.pop("BENCH_PASSTHROUGH_TOPIC")
    settings = load_settings().model_copy(update={"http": HttpSettings(enabled=False)})
    configure_logging(settings)

    def copy(
        record: InputRecord, table: RuleTable, topics: Topics, *, now: datetime, limits: Limits
    ) -> Outcome:
        return Outcome(
            "copied",
            OutRecord(out_topic, record.key, record.value, tuple(record.headers)),
            Source(record.topic, record.partition, record.offset),
            None,
            None,
            (),
            None,
            None,
            None,
            0.0,
        )

    app = create_app(settings, judge=copy)
    tune_gc(settings.consumer.batch_size)  # as the service does
    return asyncio.run(serve(app, settings))


if __name__ == "__main__":
    if sys.argv[1:2] == ["passthrough"]:
        raise SystemExit(passthrough())
    raise SystemExit(main())
