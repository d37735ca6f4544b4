"""The service as a subprocess (`python -m service serve`) for the real-broker and fault tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from tests.integration.conftest import Topics

REPO = Path(__file__).resolve().parents[2]


class ServiceProcess:
    """`python -m service serve` as a subprocess with JSON logs in a file."""

    def __init__(
        self, bootstrap: str, topics: Topics, log_path: Path, extra: dict[str, str] | None = None
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
        env.update(topics.env())
        env.update(
            {
                "CLAIMS_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                "CLAIMS_LOG__FORMAT": "json",
                "CLAIMS_SHUTDOWN_TIMEOUT_S": "10",
                # The broker's minimum; a killed member is noticed within it.
                "CLAIMS_CONSUMER__SESSION_TIMEOUT_MS": "6000",
                "CLAIMS_CONSUMER__HEARTBEAT_INTERVAL_MS": "1000",
                # Several processes at once: each serves its HTTP endpoints on a free port.
                "CLAIMS_HTTP__HOST": "127.0.0.1",
                "CLAIMS_HTTP__PORT": "0",
                "PYTHONPATH": str(REPO),
                **(extra or {}),
            }
        )
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )

    def lines(self) -> list[dict[str, Any]]:
        data = self.log_path.read_bytes()
        # Only whole lines: the process may be writing the last one while we read.
        complete = data[: data.rfind(b"\n") + 1]
        out = []
        for raw in complete.splitlines():
            out.append(orjson.loads(raw))  # every line must be JSON
        return out

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == name]

    async def wait_for(self, predicate: Any, what: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(predicate(line) for line in self.lines()):
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited {self.proc.returncode} before {what}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout_s} s; see {self.log_path}")
            await asyncio.sleep(0.1)

    async def wait_assigned(self, timeout_s: float = 60) -> None:
        """Until aiokafka logged a non-empty partition assignment for this process."""
        assigned = "Setting newly assigned partitions {TopicPartition"
        await self.wait_for(
            lambda line: str(line.get("event", "")).startswith(assigned),
            "partition assignment",
            timeout_s,
        )

    def terminate(self) -> None:
        self.proc.terminate()

    def kill(self) -> None:
        self.proc.kill()

    def wait(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout=timeout_s)
        finally:
            self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()
