"""`claims-validator ingest --publish` when the broker refuses: every claim is accounted for.

The producer is replaced by a fake that acknowledges, refuses an acknowledgement, or fails to
send, so the failure paths run without a broker (the happy path runs against a real one in
tests/integration/test_ingest_publish.py).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, ClassVar

import aiokafka  # type: ignore[import-untyped]
import pytest
from aiokafka.errors import KafkaTimeoutError, NotEnoughReplicasError  # type: ignore[import-untyped]

from service.cli import main
from tests.unit.x12_files import Sub, TClaim, interchange, transaction


class FakeProducer:
    """Acks every send except the claims in `refuse` (ack fails) and `explode` (send raises)."""

    refuse: ClassVar[set[bytes]] = set()
    explode: ClassVar[set[bytes]] = set()
    start_fails: ClassVar[bool] = False
    sent: ClassVar[list[tuple[str, bytes, bytes]]] = []

    def __init__(self, **config: Any) -> None:
        self.config = config

    async def start(self) -> None:
        if self.start_fails:
            raise ConnectionError("no broker")

    async def stop(self) -> None:
        pass

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        if key in self.explode:
            raise KafkaTimeoutError()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if key in self.refuse:
            future.set_exception(NotEnoughReplicasError())
        else:
            FakeProducer.sent.append((topic, key, value))
            future.set_result(None)
        return future


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> type[FakeProducer]:
    monkeypatch.setattr(aiokafka, "AIOKafkaProducer", FakeProducer)
    monkeypatch.setattr(FakeProducer, "sent", [])
    monkeypatch.setattr(FakeProducer, "refuse", set())
    monkeypatch.setattr(FakeProducer, "explode", set())
    monkeypatch.setattr(FakeProducer, "start_fails", False)
    for name in ("CLAIMS_KAFKA__BOOTSTRAP_SERVERS", "CLAIMS_TOPICS__SUBMITTED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLAIMS_TOPICS__SUBMITTED", "in.topic")
    return FakeProducer


def files(tmp_path: Path) -> list[str]:
    out = []
    for name, ids in (("a.837", ["A1", "A2", "A3"]), ("b.837", ["B1"])):
        path = tmp_path / name
        path.write_text(interchange([transaction([Sub(claims=[TClaim(i) for i in ids])])]))
        out.append(str(path))
    return out


def run(capsysbinary: pytest.CaptureFixture[bytes], args: list[str]) -> tuple[int, str, list[Any]]:
    code = main(["ingest", "--publish", *args])
    captured = capsysbinary.readouterr()
    return code, captured.out.decode(), [json.loads(x) for x in captured.err.splitlines()]


def test_all_acknowledged(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], producer: type[FakeProducer]
) -> None:
    code, out, errors = run(capsysbinary, files(tmp_path))
    assert (0, "published 4 claim.submitted events to in.topic\n", []) == (code, out, errors)
    assert [b"A1", b"A2", b"A3", b"B1"] == [key for _, key, _ in producer.sent]
    assert {"in.topic"} == {topic for topic, _, _ in producer.sent}


def test_a_refused_acknowledgement_names_the_claim_and_exits_5(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], producer: type[FakeProducer]
) -> None:
    producer.refuse = {b"A2"}
    code, out, errors = run(capsysbinary, files(tmp_path))
    assert (5, "published 3 claim.submitted events to in.topic\n") == (code, out)
    assert [("publish-failed", "A2", "NotEnoughReplicasError")] == [
        (e["error"], e["claim_id"], e["detail"]) for e in errors
    ]


def test_a_failed_send_stops_and_says_what_was_not_read(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], producer: type[FakeProducer]
) -> None:
    producer.explode = {b"A2"}
    paths = files(tmp_path)
    code, out, errors = run(capsysbinary, paths)
    assert (5, "published 1 claim.submitted events to in.topic\n") == (code, out)
    assert [b"A1"] == [key for _, key, _ in producer.sent]
    assert [("publish-failed", "A2"), ("publish-stopped", None)] == [
        (e["error"], e.get("claim_id")) for e in errors
    ]
    assert paths[0] == errors[1]["source"]


def test_no_broker_is_an_input_error(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], producer: type[FakeProducer]
) -> None:
    producer.start_fails = True
    code = main(["ingest", "--publish", *files(tmp_path)])
    captured = capsysbinary.readouterr()
    assert (1, b"") == (code, captured.out)
    assert b"cannot publish to 127.0.0.1:19092: ConnectionError" in captured.err
