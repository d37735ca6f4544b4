"""SASL_SSL against a real broker whose certificate a test CA signed.

The service judges claims over SASL_SSL (SCRAM-SHA-512, and PLAIN, where the password itself
crosses the wire inside TLS); a wrong password and an untrusted CA each stop start-up fast with
one `startup_failed` line; and at DEBUG, the most talkative level, the password appears nowhere
in what the process writes.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.faults.secure_broker import SecureBroker, fresh_topics, read_values, secure_broker
from tests.integration.conftest import ServiceProcess, Topics, committed_and_end, produce
from tests.service.claims import ACCEPTED_CODES, FLAGGED_CODES, claim_event, encode

__all__ = ["secure_broker"]  # the fixture, imported to be registered here

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

COUNT = 60
FAIL_FAST_BOUND_S = 60
SHUTDOWN_BOUND_S = 15
EXIT_STARTUP_FAILED = 1
NOWHERE = Topics("in", "ok", "bad", "dlq", "group")
"""Topics of a service that must never get as far as using them."""


def _claims(prefix: str) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(COUNT):
        claim_id = f"{prefix}-{i:04d}"
        codes = FLAGGED_CODES if i % 2 else ACCEPTED_CODES
        out.append((claim_id.encode(), encode(claim_event(claim_id, codes))))
    return out


def _service(topics: Topics, log_path: Path, env: dict[str, str]) -> ServiceProcess:
    """The service at DEBUG with the given SASL_SSL settings."""
    return ServiceProcess(
        env["CLAIMS_KAFKA__BOOTSTRAP_SERVERS"],
        topics,
        log_path,
        extra={**env, "CLAIMS_LOG__LEVEL": "DEBUG"},
    )


def _assert_not_written(secret: str, service: ServiceProcess) -> None:
    output = service.log_path.read_bytes()
    # Absence means something only if the process did write at the level asked for.
    assert any(line.get("level") == "debug" for line in service.lines()), "no DEBUG lines"
    assert secret.encode() not in output, f"the password is in {service.log_path}"


async def _wait_committed(broker: SecureBroker, topics: Topics, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        committed, ends = await committed_and_end(broker.bootstrap, topics.submitted, topics.group)
        if committed == ends:
            return
        assert time.monotonic() < deadline, f"committed {committed} != end offsets {ends}"
        await asyncio.sleep(0.25)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
async def test_the_service_judges_claims_over_sasl_ssl_and_never_logs_the_password(
    mechanism: str, secure_broker: SecureBroker, tmp_path: Path
) -> None:
    broker = secure_broker
    async with fresh_topics(broker.bootstrap, f"sasl-{mechanism}") as topics:
        claims = _claims(f"S-{mechanism}")
        await produce(broker.bootstrap, topics.submitted, claims)
        env = broker.service_env(mechanism=mechanism)
        service = _service(topics, tmp_path / "service.log", env)
        try:
            # Read back over SASL_SSL as well, with the same credentials and CA.
            received = await read_values(
                broker.client_kwargs(mechanism), topics.outputs, at_least=COUNT
            )
            await _wait_committed(broker, topics)
            service.terminate()
            assert 0 == await asyncio.to_thread(service.wait, SHUTDOWN_BOUND_S)
        finally:
            service.stop()

    assert [] == [value for topic, value in received if topic == topics.dead_letter]
    judged = Counter(str(orjson.loads(value)["claim_id"]) for _, value in received)
    assert {key.decode(): 1 for key, _ in claims} == dict(judged)
    assert service.events("service_started")
    _assert_not_written(broker.password, service)


@pytest.mark.parametrize(
    ("case", "reason"),
    [("wrong-password", "authentication"), ("untrusted-ca", "certificate")],
)
async def test_start_up_fails_fast_with_one_line_and_no_password(
    case: str, reason: str, secure_broker: SecureBroker, tmp_path: Path
) -> None:
    broker = secure_broker
    wrong_password = f"wrong-{secrets.token_urlsafe(12)}"
    if case == "wrong-password":
        env = broker.service_env(password=wrong_password)
    else:
        env = broker.service_env(cafile=broker.pki.other_ca_cert)
    service = _service(NOWHERE, tmp_path / "service.log", env)
    started = time.monotonic()
    try:
        code = await asyncio.to_thread(service.wait, FAIL_FAST_BOUND_S)
    except subprocess.TimeoutExpired:
        service.stop()
        pytest.fail(f"still running after {FAIL_FAST_BOUND_S} s; see {service.log_path}")
    elapsed = time.monotonic() - started

    assert EXIT_STARTUP_FAILED == code
    assert elapsed < FAIL_FAST_BOUND_S
    [failed] = service.events("startup_failed")  # every line is JSON, and one says why
    said = f"{failed.get('error', '')}: {failed.get('error_detail', '')}"
    assert reason in said.lower(), said
    assert "exception" not in failed, "a traceback instead of a one-line reason"
    _assert_not_written(broker.password, service)
    _assert_not_written(wrong_password, service)
