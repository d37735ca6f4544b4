"""What the test layers share: reading a Kafka record the service wrote, and whether a Docker
engine answers (the broker and PostgreSQL fixtures use testcontainers only then).

`tests/service/fakes.py: Sent` (a record a fake producer was given) and
`tests/integration/conftest.py: Received` (a record read back from a real broker) both take
`RecordReading`.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["RecordReading", "docker_answers"]


class RecordReading:
    """`json()` of the value and `header(name)` of a record with `value` and `headers`."""

    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def json(self) -> Any:
        assert self.value is not None
        return orjson.loads(self.value)

    def header(self, name: str) -> bytes:
        values = [v for k, v in self.headers if k == name]
        assert len(values) == 1, f"header {name!r} appears {len(values)} times"
        return values[0]


def docker_answers() -> bool:
    """A Docker engine answers a ping within 5 s (the `docker` package installed and reachable)."""
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=5).ping()
        return True
    except Exception:
        return False
