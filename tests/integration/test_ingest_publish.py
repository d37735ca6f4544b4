"""`claims-validator ingest --publish` against a real broker: what lands on the input topic.

The command runs as a user runs it (a subprocess configured by CLAIMS_* variables); the topic
is read back from the beginning and compared with the JSON Lines the same file gives offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Topics, read_topics
from tests.unit.x12_files import Line, Sub, TClaim, interchange, transaction

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "service", "ingest", *args],
        capture_output=True, cwd=ROOT, env=env, timeout=150, check=False,
    )


def claims_file(tmp_path: Path, *, broken_c2: bool = False) -> Path:
    claims = [TClaim(f"C{i}", lines=[Line(), Line("64491")]) for i in range(1, 6)]
    subscribers = [Sub(claims=claims[:3]), Sub("MBR0002X", claims=claims[3:])]
    text = interchange([transaction(subscribers)])
    if broken_c2:
        head, tail = text.split("CLM*C2*", 1)
        tail = tail.replace("*UN*1*", "*UN*X*", 1)
        text = head + "CLM*C2*" + tail
    path = tmp_path / "claims.837"
    path.write_text(text)
    return path


async def test_every_claim_is_published_keyed_by_claim_id(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    path = claims_file(tmp_path)
    env = {"CLAIMS_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap, **topics.env()}
    offline = run([str(path)], env)
    assert 0 == offline.returncode, offline.stderr.decode()
    expected = {json.loads(line)["claim"]["claim_id"]: json.loads(line)
                for line in offline.stdout.splitlines()}

    published = run(["--publish", str(path)], env)
    assert (0, b"") == (published.returncode, published.stderr), published.stderr.decode()
    assert f"published 5 claim.submitted events to {topics.submitted}\n" == (
        published.stdout.decode()
    )
    records = await read_topics(kafka_bootstrap, [topics.submitted], at_least=5)
    assert 5 == len(records)
    got = {r.key.decode(): r.json() for r in records if r.key is not None}
    assert expected == got


async def test_rejected_claims_are_reported_and_the_rest_published(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    path = claims_file(tmp_path, broken_c2=True)
    env = {"CLAIMS_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap, **topics.env()}
    result = run(["--publish", str(path)], env)
    assert 1 == result.returncode
    assert f"published 4 claim.submitted events to {topics.submitted}\n" == result.stdout.decode()
    errors = [json.loads(line) for line in result.stderr.splitlines()]
    assert ["C2"] == [e["claim_id"] for e in errors if e["error"] == "claim-rejected"]
    records = await read_topics(kafka_bootstrap, [topics.submitted], at_least=4)
    assert ["C1", "C3", "C4", "C5"] == sorted(
        r.key.decode() for r in records if r.key is not None
    )


def test_an_unreachable_broker_is_an_input_error(tmp_path: Path) -> None:
    env = {
        "CLAIMS_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "CLAIMS_KAFKA__REQUEST_TIMEOUT_MS": "2000",
    }
    result = run(["--publish", str(claims_file(tmp_path))], env)
    assert (1, b"") == (result.returncode, result.stdout)
    assert "cannot publish to 127.0.0.1:9" in result.stderr.decode()
