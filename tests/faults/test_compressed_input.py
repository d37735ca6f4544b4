"""Compression both ways, against a real broker, with the official Java tools on the other side.

In: claims the Java console producer wrote in compressed batches (every Kafka codec) each get
exactly one verdict, the group commits to the end and nothing is dead-lettered.
Out: with each publish codec, the broker stores the verdict batches compressed with it and the
Java console consumer reads every verdict back.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.faults.java_tools import CODECS, dump_batches, java_consume, java_produce
from tests.faults.secure_broker import SecureBroker, fresh_topics, secure_broker
from tests.integration.conftest import (
    ServiceProcess,
    Topics,
    committed_and_end,
    produce,
    read_topics,
)
from tests.service.claims import ACCEPTED_CODES, FLAGGED_CODES, claim_event, encode

__all__ = ["secure_broker"]  # the fixture, imported to be registered here

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

COUNT = 150
SHUTDOWN_BOUND_S = 15
JUDGE_BOUND_S = 45
"""Ample for COUNT claims; a consumer stuck on a batch it cannot read fails within it."""


def _claims(prefix: str) -> list[tuple[bytes, bytes]]:
    """(claim id, event) for COUNT claims; every third one is flagged."""
    out = []
    for i in range(COUNT):
        claim_id = f"{prefix}-{i:04d}"
        codes = FLAGGED_CODES if i % 3 == 0 else ACCEPTED_CODES
        out.append((claim_id.encode(), encode(claim_event(claim_id, codes))))
    return out


def _expected_topic(topics: Topics, claim_id: str) -> str:
    return topics.flagged if int(claim_id.rsplit("-", 1)[1]) % 3 == 0 else topics.accepted


async def _judged(broker: SecureBroker, topics: Topics, service: ServiceProcess) -> None:
    """Wait until the group committed every claim, then stop the service cleanly. A service
    that exits or stalls first fails the test with the end of its output."""
    deadline = time.monotonic() + JUDGE_BOUND_S
    while True:
        committed, ends = await committed_and_end(broker.bootstrap, topics.submitted, topics.group)
        if committed == ends:
            break
        code = service.proc.poll()
        if code is not None or time.monotonic() > deadline:
            state = f"exited {code}" if code is not None else f"stalled for {JUDGE_BOUND_S} s"
            tail = service.log_path.read_text(errors="replace")[-1500:]
            raise AssertionError(f"service {state} at {committed} of {ends}; output ends:\n{tail}")
        await asyncio.sleep(0.25)
    service.terminate()
    assert 0 == service.wait(SHUTDOWN_BOUND_S)


@pytest.mark.parametrize("codec", CODECS)
async def test_claims_the_java_producer_compressed_each_get_one_verdict(
    codec: str, secure_broker: SecureBroker, tmp_path: Path
) -> None:
    broker = secure_broker
    async with fresh_topics(broker.bootstrap, f"in-{codec}") as topics:
        claims = _claims(f"IN-{codec}")
        await asyncio.to_thread(
            java_produce,
            broker.bootstrap,
            topics.submitted,
            [key + b"\t" + value for key, value in claims],
            compression=codec,
            key_separator=b"\t",
        )
        # What the service is given really is compressed with the codec, many claims a batch.
        stored = await asyncio.to_thread(dump_batches, broker.segment_files(topics.submitted))
        assert {codec} == {b.codec for b in stored}
        assert COUNT == sum(b.count for b in stored)
        assert max(b.count for b in stored) > 1

        service = ServiceProcess(broker.bootstrap, topics, tmp_path / "service.log")
        try:
            await _judged(broker, topics, service)
        finally:
            service.stop()
        received = await read_topics(broker.bootstrap, topics.outputs, at_least=COUNT)

    assert [] == [r for r in received if r.topic == topics.dead_letter]
    verdicts = Counter(str(r.json()["claim_id"]) for r in received)
    assert {key.decode(): 1 for key, _ in claims} == dict(verdicts)
    for r in received:
        claim_id = str(r.json()["claim_id"])
        assert claim_id.encode() == r.key
        assert _expected_topic(topics, claim_id) == r.topic


@pytest.mark.parametrize("codec", CODECS)
async def test_verdicts_published_with_each_codec_are_read_by_the_java_consumer(
    codec: str, secure_broker: SecureBroker, tmp_path: Path
) -> None:
    broker = secure_broker
    async with fresh_topics(broker.bootstrap, f"out-{codec}") as topics:
        claims = _claims(f"OUT-{codec}")
        await produce(broker.bootstrap, topics.submitted, claims)
        service = ServiceProcess(
            broker.bootstrap,
            topics,
            tmp_path / "service.log",
            extra={"CLAIMS_PUBLISH__COMPRESSION_TYPE": codec},
        )
        try:
            await _judged(broker, topics, service)
        finally:
            service.stop()

        verdict_topics = [topics.accepted, topics.flagged]
        consumed = await asyncio.to_thread(
            java_consume, broker.bootstrap, verdict_topics, count=COUNT
        )
        stored = await asyncio.to_thread(
            dump_batches, [f for t in verdict_topics for f in broker.segment_files(t)]
        )
        dead = await read_topics(broker.bootstrap, [topics.dead_letter], at_least=0)

    assert [] == dead
    assert {key.decode(): 1 for key, _ in claims} == dict(Counter(k.decode() for k, _ in consumed))
    for key, value in consumed:
        assert key.decode() == orjson.loads(value)["claim_id"]
    # The broker keeps the producer's batches as they came: every one is compressed with the
    # codec (and its CRC checks).
    assert {codec} == {b.codec for b in stored}
    assert all(b.valid for b in stored)
    assert COUNT == sum(b.count for b in stored)
