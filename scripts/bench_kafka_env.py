"""The Kafka benchmark's surroundings (`scripts/bench_kafka.py`): the broker and the history
database it runs against, its topics and loaded claims, and the service processes it spawns."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

from service.settings import KafkaSettings
from service.topics import create_topics as service_topics_create
from service.topics import delete_topics as service_topics_delete

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import make_event  # the scripts folder is not a package

REPO = Path(__file__).resolve().parent.parent
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

