"""A broker of the fault suite's own: PLAINTEXT plus a SASL_SSL listener (SCRAM-SHA-512 and
PLAIN) whose certificate a test CA made at test time signed.

`scripts/kafka-local.sh` runs it from its own run directory on free ports, so the shared
broker is never touched; the broker is started once per session (`secure_broker`) and
SIGKILLed at the end (its data is thrown away with the run directory). The keys live in the
session's temporary directory and nowhere else.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]

from service.settings import KafkaSettings
from service.topics import create_topics, delete_topics
from tests.integration.conftest import PARTITIONS, Topics

__all__ = [
    "Pki",
    "SecureBroker",
    "fresh_topics",
    "make_test_pki",
    "read_values",
    "secure_broker",
]

REPO = Path(__file__).resolve().parents[2]
LOCAL_SCRIPT = REPO / "scripts" / "kafka-local.sh"
OPENSSL = "openssl"


# ------------------------------------------------------------------ the test CA ----


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    """The CA that signed the broker's certificate (what a client should trust)."""
    other_ca_cert: Path
    """A CA that signed nothing the broker presents (an untrusted CA for the client)."""
    tls_dir: Path
    """broker.crt (certificate, then the CA) and broker.key, as kafka-local.sh wants them."""


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert 0 == done.returncode, f"openssl {args[0]} failed:\n{done.stderr}"


def _self_signed_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN=claims-validator {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", key.name, "-out", cert.name,
        cwd=directory,
    )  # fmt: skip
    return key, cert


def make_test_pki(directory: Path) -> Pki:
    """A CA, a broker certificate for 127.0.0.1 signed by it, and a second, unrelated CA."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _self_signed_ca(directory, "test-ca")
    _, other_ca_cert = _self_signed_ca(directory, "other-ca")
    tls_dir = directory / "broker"
    tls_dir.mkdir()
    # `req -newkey -nodes` writes an unencrypted PKCS#8 key, the form Kafka's PEM reader takes.
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(tls_dir / "broker.key"), "-out", "broker.csr",
        cwd=directory,
    )  # fmt: skip
    (directory / "broker.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
    )
    _openssl(
        "x509", "-req", "-in", "broker.csr", "-days", "2",
        "-CA", ca_cert.name, "-CAkey", ca_key.name, "-CAcreateserial",
        "-extfile", "broker.ext", "-out", "broker-leaf.crt",
        cwd=directory,
    )  # fmt: skip
    leaf = (directory / "broker-leaf.crt").read_text()
    (tls_dir / "broker.crt").write_text(leaf + ca_cert.read_text())
    return Pki(ca_cert=ca_cert, other_ca_cert=other_ca_cert, tls_dir=tls_dir)


# ------------------------------------------------------------------ the broker ----


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass(frozen=True)
class SecureBroker:
    bootstrap: str
    """The PLAINTEXT listener (topics are created and compression tests run here)."""
    sasl_ssl_bootstrap: str
    username: str
    password: str = field(repr=False)
    pki: Pki
    run_dir: Path
    script_env: dict[str, str] = field(repr=False)

    def segment_files(self, topic: str) -> list[Path]:
        """The log segments of every partition of `topic` on this broker's disk."""
        partition_dir = re.compile(re.escape(topic) + r"-\d+")
        return sorted(
            segment
            for segment in (self.run_dir / "data").glob("*/*.log")
            if partition_dir.fullmatch(segment.parent.name)
        )

    def service_env(
        self,
        *,
        mechanism: str = "SCRAM-SHA-512",
        password: str | None = None,
        cafile: Path | None = None,
    ) -> dict[str, str]:
        """The service's settings for the SASL_SSL listener (bootstrap included)."""
        return {
            "CLAIMS_KAFKA__BOOTSTRAP_SERVERS": self.sasl_ssl_bootstrap,
            "CLAIMS_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "CLAIMS_KAFKA__SASL_MECHANISM": mechanism,
            "CLAIMS_KAFKA__SASL_USERNAME": self.username,
            "CLAIMS_KAFKA__SASL_PASSWORD": self.password if password is None else password,
            "CLAIMS_KAFKA__SSL_CAFILE": str(cafile or self.pki.ca_cert),
        }

    def client_kwargs(self, mechanism: str = "SCRAM-SHA-512") -> dict[str, Any]:
        """aiokafka client settings for the SASL_SSL listener, trusting the test CA."""
        return {
            "bootstrap_servers": self.sasl_ssl_bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
            "ssl_context": ssl.create_default_context(cafile=str(self.pki.ca_cert)),
        }


def _script(broker_env: dict[str, str], command: str, timeout_s: float) -> str:
    done = subprocess.run(
        [str(LOCAL_SCRIPT), command],
        env={**os.environ, **broker_env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert 0 == done.returncode, f"kafka-local.sh {command} failed:\n{done.stderr[-3000:]}"
    return done.stdout


def start_secure_broker(base: Path) -> SecureBroker:
    """Make the test CA under `base` and start a broker with its run directory there."""
    pki = make_test_pki(base / "pki")
    port, controller_port, sasl_ssl_port = _free_ports(3)
    # Distinctive, so a test can search the logs for it; only [A-Za-z0-9_-].
    password = f"pw-{secrets.token_urlsafe(18)}"
    username = "claims-validator"
    env = {
        "KAFKA_LOCAL_RUN_DIR": str(base / "run"),
        "KAFKA_LOCAL_PORT": str(port),
        "KAFKA_LOCAL_CONTROLLER_PORT": str(controller_port),
        "KAFKA_LOCAL_SASL_SSL_PORT": str(sasl_ssl_port),
        "KAFKA_LOCAL_TLS_DIR": str(pki.tls_dir),
        "KAFKA_LOCAL_SASL_USER": username,
        "KAFKA_LOCAL_SASL_PASSWORD": password,
        "KAFKA_LOCAL_AUTO_CREATE": "false",
        "KAFKA_HEAP_OPTS": "-Xms128m -Xmx512m",
    }
    try:
        bootstrap = _script(env, "start", timeout_s=600).strip().splitlines()[-1]
        asyncio.run(_wait_group_coordinator(bootstrap))
    except BaseException:
        # A broker that started but never became usable is not left behind.
        subprocess.run([str(LOCAL_SCRIPT), "kill"], env={**os.environ, **env}, check=False)
        raise
    return SecureBroker(
        bootstrap=bootstrap,
        sasl_ssl_bootstrap=f"127.0.0.1:{sasl_ssl_port}",
        username=username,
        password=password,
        pki=pki,
        run_dir=base / "run",
        script_env=env,
    )


async def _wait_group_coordinator(bootstrap: str, timeout_s: float = 60) -> None:
    """Until a group coordinator answers: a fresh cluster creates its offsets topic on the
    first group request, and group calls fail (retriably) until it has."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                await admin.find_coordinator("faults-warm-up")
                return
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


def stop_secure_broker(broker: SecureBroker) -> None:
    _script(broker.script_env, "kill", timeout_s=60)


_BROKER = pytest.StashKey[SecureBroker]()


@pytest.fixture(scope="session")
def secure_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> SecureBroker:
    """The session's secure broker. Test modules import this fixture, and pytest keeps one
    instance per module that does, so the broker itself is kept on the session."""
    session = request.session
    if _BROKER not in session.stash:
        broker = start_secure_broker(tmp_path_factory.mktemp("secure-broker"))
        session.stash[_BROKER] = broker
        session.addfinalizer(lambda: stop_secure_broker(broker))
    return session.stash[_BROKER]


# ------------------------------------------------------------------ clients ----


@asynccontextmanager
async def fresh_topics(bootstrap: str, label: str) -> AsyncIterator[Topics]:
    """Fresh 3-partition topics and group named after `label`; deleted afterwards."""
    topics = Topics.fresh(f"faults-{label[:40]}")
    names = topics.every
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    await create_topics(kafka, names, partitions=PARTITIONS)
    try:
        yield topics
    finally:
        await delete_topics(kafka, names)


async def read_values(
    client: dict[str, Any], names: Sequence[str], *, at_least: int, timeout_s: float = 60
) -> list[tuple[str, bytes]]:
    """(topic, value) of every record on `names` once there are `at_least`, read from the
    beginning without a group by an aiokafka consumer with the `client` settings."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client)
    await consumer.start()
    try:
        tps = [TopicPartition(n, p) for n in names for p in range(PARTITIONS)]
        deadline = time.monotonic() + timeout_s
        while sum((ends := await consumer.end_offsets(tps)).values()) < at_least:
            if time.monotonic() > deadline:
                raise AssertionError(f"{sum(ends.values())} records on {names}, want {at_least}")
            await asyncio.sleep(0.25)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[str, bytes]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, records in batch.items():
                out.extend((r.topic, r.value) for r in records if r.offset < ends[tp])
        return out
    finally:
        await consumer.stop()
