"""Fixtures of the history tests (imported by conftest.py): a PostgreSQL server per session,
a fresh database per test, and the settings that switch the service's history on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import fresh_database, postgres_server

HMAC_KEY = "integration-test-hmac-key-0123456789abcdef"


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    with postgres_server() as dsn:
        yield dsn


@pytest.fixture
def history_dsn(postgres_dsn: str) -> str:
    return fresh_database(postgres_dsn)


def history_env(dsn: str) -> dict[str, str]:
    return {
        "CLAIMS_HISTORY__ENABLED": "true",
        "CLAIMS_HISTORY__DSN": dsn,
        "CLAIMS_HISTORY__HMAC_KEY": HMAC_KEY,
        "CLAIMS_HISTORY__SSL_MODE": "disable",
        "CLAIMS_HISTORY__RETRY_INITIAL_S": "0.2",
        "CLAIMS_HISTORY__RETRY_MAX_S": "1",
    }
