"""`claims-validator web` as a real process on a free port, for the browser and command tests."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = ["WebProcess", "web_process"]

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0


@dataclass
class WebProcess:
    process: subprocess.Popen[bytes]
    url: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    """Every JSON log line the process wrote so far (read by a thread)."""

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, then its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CLAIMS_")}
    env.update(
        CLAIMS_HTTP__HOST="127.0.0.1",
        CLAIMS_HTTP__PORT="0",
        CLAIMS_LOG__FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def web_process() -> Iterator[WebProcess]:
    """Start `python -m service web`, wait for its `web_started` line, stop it at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "web"],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    seen: queue.Queue[dict[str, Any]] = queue.Queue()
    lines: list[dict[str, Any]] = []

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                line = {"event": "not-json", "text": raw.decode(errors="replace")}
            lines.append(line)
            seen.put(line)
        seen.put({"event": "(process exited)"})

    threading.Thread(target=read, daemon=True).start()
    try:
        while True:
            try:
                line = seen.get(timeout=START_TIMEOUT_S)
            except queue.Empty:
                raise AssertionError(f"claims-validator web did not start: {lines}") from None
            if line.get("event") == "(process exited)":
                raise AssertionError(f"claims-validator web exited at start-up: {lines}")
            if line.get("event") == "web_started":
                break
        web = WebProcess(process, str(line["url"]), lines)
        yield web
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
