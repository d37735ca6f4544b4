"""Watching a service process from outside: its HTTP port, readiness, metrics and memory.

The port comes from the process's own `http_started` log line (CLAIMS_HTTP__PORT=0, so several
processes never race for one). Log files of a busy service hold a line per verdict, so they are
searched as bytes and only the matching lines are parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import ServiceProcess


def log_events(service: ServiceProcess, name: str) -> list[dict[str, Any]]:
    """The JSON log lines whose event is `name` (without parsing the verdict lines)."""
    needle = f'"{name}"'.encode()
    out = []
    for raw in service.log_path.read_bytes().splitlines():
        if needle in raw:
            line = orjson.loads(raw)
            if line.get("event") == name:
                out.append(line)
    return out


async def wait_event(service: ServiceProcess, name: str, timeout_s: float = 60) -> dict[str, Any]:
    """The first `name` log line of `service`, waiting for it."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = log_events(service, name)
        if found:
            return found[0]
        if service.proc.poll() is not None:
            raise AssertionError(f"service exited {service.proc.returncode} before {name}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {name} within {timeout_s} s; see {service.log_path}")
        await asyncio.sleep(0.1)


async def http_port(service: ServiceProcess) -> int:
    port: int = (await wait_event(service, "http_started"))["port"]
    return port


async def http_get(port: int, path: str, timeout_s: float = 5) -> tuple[int, bytes]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout_s)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout_s)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def metric(port: int, name: str) -> float | None:
    """The value of an unlabelled sample `name` on /metrics (summed over labels), or None."""
    status, body = await http_get(port, "/metrics")
    assert 200 == status
    values = [
        s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == name
    ]
    return sum(values) if values else None


@dataclass
class ReadinessLog:
    """Every /health/ready status seen, with the monotonic time it was seen."""

    seen: list[tuple[float, int]] = field(default_factory=list)
    stalled: list[tuple[float, float | None]] = field(default_factory=list)

    def statuses(self, start: float, end: float = float("inf")) -> set[int]:
        return {status for at, status in self.seen if start <= at <= end}

    def stalled_max(self, start: float, end: float = float("inf")) -> float:
        return max((v or 0.0 for at, v in self.stalled if start <= at <= end), default=0.0)

    def first(self, status: int, after: float) -> float | None:
        """Seconds after `after` when `status` was first seen, or None."""
        for at, seen in self.seen:
            if at >= after and seen == status:
                return at - after
        return None


@contextlib.asynccontextmanager
async def probing(port_of: Callable[[], int | None], every_s: float = 0.5) -> Any:
    """Probe /health/ready (and read claims_validator_stalled) every `every_s` in the
    background; `port_of()` names the current process's port (None: none running)."""
    log = ReadinessLog()

    async def loop() -> None:
        while True:
            port = port_of()
            if port is not None:
                with contextlib.suppress(OSError, TimeoutError, IndexError, ValueError):
                    status, _ = await http_get(port, "/health/ready")
                    log.seen.append((time.monotonic(), status))
                    stalled = await metric(port, "claims_validator_stalled")
                    log.stalled.append((time.monotonic(), stalled))
            await asyncio.sleep(every_s)

    task = asyncio.create_task(loop())
    try:
        yield log
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def rss_kib(pid: int) -> int:
    """VmRSS of `pid` from /proc, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")
