"""Versioned schema migrations, shipped in the package and applied in order, once each.

`migrations/NNNN_name.sql` files; applied versions are recorded in
`claims_history.schema_migrations`. Two instances starting together take turns on a
session-level advisory lock, so each migration runs once. A schema already up to date needs no
privilege beyond using it: an owner role can migrate (`claims-validator db migrate`) and the
service run as a role without CREATE on the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Final

import asyncpg

__all__ = ["Migration", "migrate", "shipped_migrations"]

_LOCK: Final = 0x636C61696D73  # "claims": the migration lock, distinct from member keys' range
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def shipped_migrations() -> tuple[Migration, ...]:
    """The migrations in the package, by version."""
    found = []
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return tuple(sorted(found, key=lambda m: m.version))



async def migrate(connection: asyncpg.Connection) -> list[str]:
    """Apply the migrations not yet applied; the names of those applied now."""
    applied_now: list[str] = []
    await connection.execute("SELECT pg_advisory_lock($1)", _LOCK)
    try:
        # Even IF NOT EXISTS needs CREATE on the database: asked only of a new database.
        table = "claims_history.schema_migrations"
        if await connection.fetchval("SELECT to_regclass($1)", table) is None:
            await connection.execute(
                "CREATE SCHEMA IF NOT EXISTS claims_history;"
                "CREATE TABLE IF NOT EXISTS claims_history.schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        done = {
            row["version"]
            for row in await connection.fetch(
                "SELECT version FROM claims_history.schema_migrations"
            )
        }
        for migration in shipped_migrations():
            if migration.version in done:
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO claims_history.schema_migrations (version, name)"
                    " VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            applied_now.append(f"{migration.version:04d}_{migration.name}")
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK)
    return applied_now
