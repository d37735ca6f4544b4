"""Records whose headers break clients, against the real broker: nothing is skipped silently.

* Header values that are not UTF-8, or null: the claims are judged like any other (FastStream's
  own parser would have failed the whole batch, and the next commit passed over it).
* A header KEY that is not UTF-8: aiokafka cannot read the record at all. The partition is
  stopped at exactly that offset (committed up to it, never past it), once, with an error line,
  the `partitions_stopped` and `stalled` metrics and readiness 503 naming partition and offset;
  the other partitions go on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from tests.faults.poison import produce_batch_with_bad_header_keys
from tests.integration.conftest import (
    PARTITIONS,
    ServiceProcess,
    Topics,
    committed_and_end,
    produce,
    read_topics,
    wait_committed_to_end,
)
from tests.integration.test_observability import _free_port, get, http_get, scrape
from tests.service.claims import claim_event, encode

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

def _claim(claim_id: str) -> tuple[bytes, bytes]:
    return claim_id.encode(), encode(claim_event(claim_id))


async def test_header_values_that_are_not_utf8_or_null_are_judged_like_any_other(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], tmp_path: Path
) -> None:
    plain = [_claim(f"P-{i}") for i in range(20)]
    odd = [_claim(f"H-{i}") for i in range(20)]
    await produce(kafka_bootstrap, topics.submitted, plain[:10])
    await produce(
        kafka_bootstrap,
        topics.submitted,
        odd,
        headers=[("trace-id", b"\xff\xfe not utf-8"), ("empty", None)],  # type: ignore[list-item]
    )
    await produce(kafka_bootstrap, topics.submitted, plain[10:])
    services.append(ServiceProcess(kafka_bootstrap, topics, tmp_path / "service.log"))

    received = await read_topics(kafka_bootstrap, topics.outputs, at_least=40)
    await wait_committed_to_end(kafka_bootstrap, topics.submitted, topics.group)

    assert [] == [r for r in received if r.topic == topics.dead_letter]
    judged = sorted(orjson.loads(r.value or b"")["claim_id"] for r in received)
    assert sorted(k.decode() for k, _ in plain + odd) == judged


async def test_a_header_key_that_is_not_utf8_stops_its_partition_there_and_says_so(
    kafka_bootstrap: str, topics: Topics, services: list[ServiceProcess], tmp_path: Path
) -> None:
    stuck = 0
    base = await produce_batch_with_bad_header_keys(
        kafka_bootstrap,
        topics.submitted,
        [
            (b"K-0", _claim("K-0")[1], False),
            (b"K-1", _claim("K-1")[1], True),
            (b"K-2", _claim("K-2")[1], False),
        ],
        stuck,
    )
    others = [_claim(f"O-{i}") for i in range(60)]
    sent = await produce(kafka_bootstrap, topics.submitted, others)
    on_other_partitions = [p for p in sent if p.partition != stuck]
    port = _free_port()
    service = ServiceProcess(
        kafka_bootstrap, topics, tmp_path / "service.log", {"CLAIMS_HTTP__PORT": str(port)}
    )
    services.append(service)

    expected = 1 + len(on_other_partitions)  # K-0, then every claim not behind K-1
    received = await read_topics(kafka_bootstrap, topics.outputs, at_least=expected)
    await service.wait_for(lambda line: line.get("event") == "partition_stopped", "a stop")
    await asyncio.sleep(3)  # time for a hot loop to show, if there were one

    judged = {orjson.loads(r.value or b"")["claim_id"] for r in received}
    assert "K-0" in judged
    assert {"K-1", "K-2"}.isdisjoint(judged)
    assert {p.key.decode() for p in on_other_partitions if p.key} <= judged
    [stop] = service.events("partition_stopped")
    assert (topics.submitted, stuck, base + 1, "UnicodeDecodeError") == (
        stop["topic"],
        stop["partition"],
        stop["offset"],
        stop["error"],
    )
    assert "error" == stop["level"]
    committed, ends = await committed_and_end(kafka_bootstrap, topics.submitted, topics.group)
    assert base + 1 == committed[stuck]  # up to the unreadable record, never past it
    assert all(committed[p] == ends[p] for p in range(PARTITIONS) if p != stuck)

    status, body = await http_get(port, "/health/ready")
    report = orjson.loads(body)
    assert 503 == status
    assert ["consumer"] == report["failed"]
    assert f"{topics.submitted}-{stuck} at offset {base + 1}" in report["checks"]["consumer"]
    samples = await scrape(port)
    assert 1.0 == get(samples, "claims_validator_partitions_stopped")
    assert 1.0 == get(samples, "claims_validator_stalled")
    assert service.proc.poll() is None  # stopped the partition, not the process
