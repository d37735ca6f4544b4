"""`claims-validator check --history DSN` against a real PostgreSQL: the sample file makes the
cross-claim rules fire, a second run gives the same verdicts, and `db migrate|purge` work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from service.engine import RULE_IDS
from tests.integration.history_fixtures import HMAC_KEY

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "claims.jsonl"


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
    env.update({"CLAIMS_HISTORY__HMAC_KEY": HMAC_KEY, "CLAIMS_HISTORY__SSL_MODE": "disable"})
    return subprocess.run(
        [sys.executable, "-m", "service", *args], capture_output=True, env=env, cwd=REPO,
        timeout=120, check=False,
    )


def _verdicts(out: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.splitlines()]


def test_with_a_history_every_rule_of_the_catalogue_fires_on_the_samples(
    history_dsn: str,
) -> None:
    first = _cli("check", "--history", history_dsn, str(SAMPLES))
    assert 0 == first.returncode, first.stderr
    assert b"" == first.stderr
    verdicts = _verdicts(first.stdout)
    fired = {f["rule_id"] for v in verdicts for f in v["findings"]}
    assert sorted(RULE_IDS) == sorted(fired)
    by_claim = {v["claim_id"]: v for v in verdicts}
    assert [f["rule_id"] for f in by_claim["CLM-SAMPLE-711"]["findings"]] == ["DUPLICATE_CLAIM"]
    assert "CLM-SAMPLE-710" in by_claim["CLM-SAMPLE-711"]["findings"][0]["message"]
    assert [f["rule_id"] for f in by_claim["CLM-SAMPLE-712"]["findings"]] == ["DUPLICATE_LINE"]
    (limit,) = by_claim["CLM-SAMPLE-705"]["findings"]
    assert limit["rule_id"] == "FREQUENCY_LIMIT"
    for n, day in ((701, "2025-01-10"), (702, "2025-04-10"), (703, "2025-07-10"),
                   (704, "2025-10-10")):
        assert f"{day} (CLM-SAMPLE-{n})" in limit["message"]
    for n in (701, 702, 703, 704, 710):
        assert by_claim[f"CLM-SAMPLE-{n}"]["verdict"] == "accepted"

    # The same events again: judged against what came before their first sighting.
    again = _cli("check", "--history", history_dsn, str(SAMPLES))
    strip = [{k: v for k, v in d.items() if k != "occurred_at"} for d in verdicts]
    assert strip == [
        {k: v for k, v in d.items() if k != "occurred_at"} for d in _verdicts(again.stdout)
    ]


async def _rows(dsn: str) -> list[str]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT * FROM claims_history.claims")
        return [repr(dict(r)) for r in rows]
    finally:
        await connection.close()


def test_the_database_holds_no_member_id_or_birth_date(history_dsn: str) -> None:
    import asyncio

    result = _cli("check", "--history", history_dsn, str(SAMPLES))
    assert 0 == result.returncode
    readable = [
        v for v in _verdicts(result.stdout)
        if "CLAIM_MALFORMED" not in {f["rule_id"] for f in v["findings"]}
    ]
    rows = asyncio.run(_rows(history_dsn))
    assert len(rows) == len(readable)  # every readable claim, and only those
    text = "\n".join(rows)
    for secret in ("SAMPLE0701X", "SAMPLE0710X", "SAMPLE", "1951-07-14", "1951"):
        assert secret not in text.replace("CLM-SAMPLE", "")


async def _age(dsn: str, claim_ids: list[str], days: int) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "UPDATE claims_history.claims SET stored_at = now() - make_interval(days => $2),"
            " first_date = first_date - $2, last_date = last_date - $2"
            " WHERE claim_id = ANY($1)",
            claim_ids, days,
        )
    finally:
        await connection.close()


def test_db_migrate_and_purge(history_dsn: str) -> None:
    import asyncio

    migrate = _cli("db", "migrate", "--dsn", history_dsn)
    assert (0, b"schema up to date\n") == (migrate.returncode, migrate.stdout)
    assert 0 == _cli("check", "--history", history_dsn, str(SAMPLES)).returncode
    # Just stored: kept, whatever the dates of service.
    purge = _cli("db", "purge", "--dsn", history_dsn)
    assert (0, b"purged 0 rows\n") == (purge.returncode, purge.stdout)
    # Stored and served longer ago than the 365-day window plus the 30-day margin: deleted.
    asyncio.run(_age(history_dsn, ["CLM-SAMPLE-701", "CLM-SAMPLE-702"], 365 + 31 + 400))
    purge = _cli("db", "purge", "--dsn", history_dsn)
    assert (0, b"purged 2 rows\n") == (purge.returncode, purge.stdout)


def test_an_unreachable_database_is_exit_7_without_a_verdict() -> None:
    result = _cli("check", "--history", "postgresql://postgres@127.0.0.1:9/none", str(SAMPLES))
    assert 7 == result.returncode
    assert b"" == result.stdout
    assert b"the history database is unavailable" in result.stderr


def test_a_role_without_create_on_the_database_runs_on_a_schema_its_owner_migrated(
    history_dsn: str,
) -> None:
    """Least privilege: the owner migrates, the service's role only uses the schema."""
    import asyncio

    assert 0 == _cli("db", "migrate", "--dsn", history_dsn).returncode
    role = "claims_narrow_" + history_dsn.rsplit("/", 1)[1][-8:].lower()
    asyncio.run(_narrow_role(history_dsn, role))
    _, rest = history_dsn.split("://", 1)[1].split("@", 1)
    narrow = f"postgresql://{role}:narrow-password@{rest}"

    result = _cli("check", "--history", narrow, str(SAMPLES))

    assert 0 == result.returncode, result.stderr
    fired = {f["rule_id"] for v in _verdicts(result.stdout) for f in v["findings"]}
    assert {"DUPLICATE_CLAIM", "DUPLICATE_LINE", "FREQUENCY_LIMIT"} <= fired


async def _narrow_role(dsn: str, role: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        database = await connection.fetchval("SELECT current_database()")
        await connection.execute(
            f"CREATE ROLE {role} LOGIN PASSWORD 'narrow-password';"
            f'REVOKE CREATE ON DATABASE "{database}" FROM PUBLIC;'
            f"GRANT USAGE ON SCHEMA claims_history TO {role};"
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA claims_history"
            f" TO {role};"
            f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA claims_history TO {role};"
            f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA claims_history TO {role};"
        )
        assert not await connection.fetchval(
            "SELECT has_database_privilege($1, current_database(), 'CREATE')", role
        )
    finally:
        await connection.close()
