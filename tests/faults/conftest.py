"""The fault suite's own broker, fresh topics on it, the service processes and the figures.

`fault_broker` (session) is a dedicated single-node Apache Kafka started with
`scripts/kafka-local.sh` on free ports and a run directory of its own under `.cache/`, with
`auto.create.topics.enable=false` so a deleted topic stays deleted. The tests stop, kill and
restart it at will; the shared broker on 19092 (CLAIMS_TEST_BOOTSTRAP) is never touched. At the
end of the session the instance is reset (stopped, data deleted).

`fault_report` collects each scenario's figures into `.cache/fault-report.json` (git-ignored),
from which the README's "Fault suite" table is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.settings import KafkaSettings
from service.topics import create_topics, delete_topics
from tests.integration.conftest import (
    LOCAL_SCRIPT,
    PARTITIONS,
    REPO,
    ServiceProcess,
    Topics,
    _answers,
    _free_port,
)

REPORT = REPO / ".cache" / "fault-report.json"
BROKER_TIMEOUT_S = 180


class FaultBroker:
    """One kafka-local.sh instance: its own ports and run directory, topics never auto-created."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.port = _free_port()
        self.controller_port = _free_port()
        while self.controller_port == self.port:
            self.controller_port = _free_port()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _script(self, command: str) -> None:
        env = {
            **os.environ,
            "KAFKA_LOCAL_RUN_DIR": str(self.run_dir),
            "KAFKA_LOCAL_PORT": str(self.port),
            "KAFKA_LOCAL_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_LOCAL_AUTO_CREATE": "false",
        }
        done = subprocess.run(
            [str(LOCAL_SCRIPT), command],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=BROKER_TIMEOUT_S,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"kafka-local.sh {command} (port {self.port}) failed:\n{done.stderr[-2000:]}"
            )

    def start(self) -> None:
        """Start (or keep) the broker; returns once it answers a metadata request."""
        self._script("start")

    def stop(self) -> None:
        """SIGTERM: the broker's own controlled shutdown."""
        self._script("stop")

    def kill(self) -> None:
        """SIGKILL of the broker JVM: a crash, nothing flushed or closed."""
        self._script("kill")

    def reset(self) -> None:
        """Stop and delete the data (the next start formats a fresh cluster)."""
        self._script("reset")

    async def answers(self) -> bool:
        return await _answers(self.bootstrap, timeout_s=5)


@pytest.fixture(scope="session")
def fault_broker() -> Iterator[FaultBroker]:
    run_dir = REPO / ".cache" / "kafka" / f"faults-{uuid.uuid4().hex[:8]}"
    broker = FaultBroker(run_dir)
    try:
        broker.start()
    except Exception as exc:
        shutil.rmtree(run_dir, ignore_errors=True)
        pytest.fail(f"the fault suite needs its own broker (java and the Kafka jars): {exc}")
    try:
        yield broker
    finally:
        broker.reset()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
async def fault_topics(
    fault_broker: FaultBroker, request: pytest.FixtureRequest
) -> AsyncIterator[Topics]:
    """Fresh topics and group on the fault broker (started again if a test left it down)."""
    if not await fault_broker.answers():
        await asyncio.to_thread(fault_broker.start)
    names = Topics.fresh(f"f-{request.node.name[:40]}")
    every = names.every
    kafka = KafkaSettings(bootstrap_servers=fault_broker.bootstrap)
    await create_topics(kafka, every, partitions=PARTITIONS)
    yield names
    if await fault_broker.answers():
        # A topic the test deleted itself fails the call; the data goes with the reset anyway.
        with contextlib.suppress(Exception):
            await delete_topics(kafka, every)


@pytest.fixture
def services() -> Iterator[list[ServiceProcess]]:
    """Service processes started by a test; anything still running is killed at the end."""
    started: list[ServiceProcess] = []
    yield started
    for service in started:
        service.stop()


class FaultReport:
    """Figures per scenario, merged into REPORT as each test writes them."""

    def record(self, scenario: str, **figures: Any) -> None:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        current: dict[str, Any] = {}
        if REPORT.is_file():
            try:
                current = json.loads(REPORT.read_text())
            except ValueError:
                current = {}
        current[scenario] = {
            **figures,
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        REPORT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def fault_report() -> FaultReport:
    return FaultReport()
