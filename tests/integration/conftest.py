"""Real-broker fixtures: where the broker comes from, fresh topics per test, the service process.

`kafka_bootstrap` (session) finds a broker, in this order, and never skips:
1. `CLAIMS_TEST_BOOTSTRAP` names one: it always wins (it must answer, or the session fails);
2. a Docker engine answers: an `apache/kafka` container with the image tag of
   docker-compose.yml (testcontainers' `DockerContainer`; its `KafkaContainer` drives
   Confluent's image scripts, which the Apache image does not have);
3. the project's own broker, `scripts/kafka-local.sh start` (stopped again at the end of the
   session only if this session started it).
If none can be had, the session fails with what was tried.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

from service.settings import KafkaSettings
from service.topics import create_topics, delete_topics
from tests.integration.processes import ServiceProcess
from tests.support import RecordReading, docker_answers

REPO = Path(__file__).resolve().parents[2]
LOCAL_SCRIPT = REPO / "scripts" / "kafka-local.sh"
PARTITIONS = 3


# ------------------------------------------------------------------ the broker ----


async def _answers(bootstrap: str, timeout_s: float = 10.0) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return bool(cluster.get("brokers"))
    except Exception:
        return False
    finally:
        await admin.close()


def broker_answers(bootstrap: str, timeout_s: float = 10.0) -> bool:
    return asyncio.run(_answers(bootstrap, timeout_s))


def apache_kafka_image() -> str:
    """The apache/kafka image of docker-compose.yml; else the version kafka-local.sh runs."""
    compose = REPO / "docker-compose.yml"
    if compose.is_file():
        found = re.search(r"image:\s*[\"']?(apache/kafka:[\w.\-]+)", compose.read_text())
        if found:
            return found.group(1)
    version = re.search(r'^KAFKA_VERSION="([^"]+)"', LOCAL_SCRIPT.read_text(), re.MULTILINE)
    return f"apache/kafka:{version.group(1) if version else '4.1.1'}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_container() -> tuple[Any, str]:
    from testcontainers.core.container import DockerContainer

    port = _free_port()
    container = (
        DockerContainer(apache_kafka_image())
        .with_bind_ports(9092, port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env(
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        )
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .with_env("KAFKA_NUM_PARTITIONS", str(PARTITIONS))
    )
    container.start()
    bootstrap = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while not broker_answers(bootstrap, timeout_s=5):
        if time.monotonic() > deadline:
            container.stop()
            raise RuntimeError(f"{apache_kafka_image()} did not answer on {bootstrap}")
        time.sleep(1)
    return container, bootstrap


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    tried: list[str] = []
    named = os.environ.get("CLAIMS_TEST_BOOTSTRAP")
    if named:
        if not broker_answers(named, timeout_s=30):
            pytest.fail(f"CLAIMS_TEST_BOOTSTRAP={named} names a broker that does not answer")
        yield named
        return

    if docker_answers():
        try:
            container, bootstrap = _start_container()
        except Exception as exc:
            tried.append(f"Docker {apache_kafka_image()}: {type(exc).__name__}: {exc}")
        else:
            try:
                yield bootstrap
            finally:
                container.stop()
            return
    else:
        tried.append("Docker: no engine answers")

    status = subprocess.run([str(LOCAL_SCRIPT), "status"], capture_output=True, check=False)
    started_here = status.returncode != 0
    start = subprocess.run(
        [str(LOCAL_SCRIPT), "start"], capture_output=True, text=True, check=False, timeout=600
    )
    lines = start.stdout.strip().splitlines()
    if start.returncode != 0 or not lines:
        tried.append(f"{LOCAL_SCRIPT.name} start: {start.stderr.strip()[-500:]}")
        pytest.fail("no Kafka broker for the integration tests; tried:\n" + "\n".join(tried))
    try:
        yield lines[-1]
    finally:
        if started_here:
            subprocess.run([str(LOCAL_SCRIPT), "stop"], capture_output=True, check=False)


# ------------------------------------------------------------------ topics ----


@dataclass(frozen=True)
class Topics:
    submitted: str
    accepted: str
    flagged: str
    dead_letter: str
    group: str

    @classmethod
    def fresh(cls, label: str) -> Topics:
        """Names no other test uses: `label` (made safe for Kafka) and a random suffix."""
        base = re.sub(r"[^a-zA-Z0-9._-]", "-", f"{label[:44]}-{uuid.uuid4().hex[:8]}")
        return cls(
            submitted=f"{base}.submitted",
            accepted=f"{base}.accepted",
            flagged=f"{base}.flagged",
            dead_letter=f"{base}.dead-letter",
            group=f"{base}-group",
        )

    @property
    def outputs(self) -> list[str]:
        return [self.accepted, self.flagged, self.dead_letter]

    @property
    def every(self) -> list[str]:
        return [self.submitted, *self.outputs]

    def env(self) -> dict[str, str]:
        return {
            "CLAIMS_TOPICS__SUBMITTED": self.submitted,
            "CLAIMS_TOPICS__ACCEPTED": self.accepted,
            "CLAIMS_TOPICS__FLAGGED": self.flagged,
            "CLAIMS_TOPICS__DEAD_LETTER": self.dead_letter,
            "CLAIMS_CONSUMER__GROUP_ID": self.group,
        }


@pytest.fixture
async def topics(kafka_bootstrap: str, request: pytest.FixtureRequest) -> AsyncIterator[Topics]:
    """Fresh 3-partition topics and a fresh group for one test; deleted afterwards."""
    names = Topics.fresh(f"it-{request.node.name[:40].strip('_')}")
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    await create_topics(kafka, names.every, partitions=PARTITIONS)
    try:
        yield names
    finally:
        await delete_topics(kafka, names.every)


# ------------------------------------------------------------------ clients ----


@dataclass(frozen=True)
class Produced:
    key: bytes | None
    value: bytes
    partition: int
    offset: int


async def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes]],
    headers: list[tuple[str, bytes]] | None = None,
) -> list[Produced]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, headers=headers) for key, value in records
        ]
        metas = [await f for f in futures]
    finally:
        await producer.stop()
    return [
        Produced(key, value, m.partition, m.offset)
        for (key, value), m in zip(records, metas, strict=True)
    ]


@dataclass(frozen=True)
class Received(RecordReading):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int = -1


async def read_topics(
    bootstrap: str, names: list[str], *, at_least: int, timeout_s: float = 60
) -> list[Received]:
    """Every record on `names` (from the beginning, no group) once there are `at_least`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(n, p) for n in names for p in range(PARTITIONS)]
        deadline = time.monotonic() + timeout_s
        while sum((await consumer.end_offsets(tps)).values()) < at_least:
            if time.monotonic() > deadline:
                have = sum((await consumer.end_offsets(tps)).values())
                raise AssertionError(f"{have} records on {names}, expected {at_least}")
            await asyncio.sleep(0.25)
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Received] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                out.extend(
                    Received(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        tuple(r.headers),
                        r.timestamp,
                    )
                    for r in records
                    if r.offset < ends[TopicPartition(r.topic, r.partition)]
                )
        return out
    finally:
        await consumer.stop()


async def committed_and_end(
    bootstrap: str, topic: str, group: str
) -> tuple[dict[int, int], dict[int, int]]:
    """(committed offset, end offset) per partition of `topic` for `group` (-1: none)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
        committed = {tp.partition: (meta.offset if meta else -1) for tp, meta in offsets.items()}
        ends = {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
        return committed, ends
    finally:
        await consumer.stop()
        await admin.close()


async def wait_committed_to_end(
    bootstrap: str, topic: str, group: str, timeout_s: float = 30
) -> dict[int, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        committed, ends = await committed_and_end(bootstrap, topic, group)
        if committed == ends:
            return committed
        if time.monotonic() > deadline:
            raise AssertionError(f"committed {committed} != end offsets {ends}")
        await asyncio.sleep(0.25)


# ------------------------------------------------------------------ the service ----


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    """Service processes started by a test; anything still running is killed at the end."""
    started: list[ServiceProcess] = []
    yield started
    for service in started:
        service.stop()


# ------------------------------------------------------------------ the history database ----

from tests.integration.history_fixtures import history_dsn, postgres_dsn  # noqa: E402

__all__ = ["ServiceProcess", "history_dsn", "postgres_dsn"]
