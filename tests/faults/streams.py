"""Claim streams for the fault suite, and what came out of them.

`claim_records()` makes keyed claim.submitted events cheaply (one template, the ids replaced), so
a test can load hundreds of thousands; `produce_fast()` loads them, `SteadyProducer` feeds a
topic at a fixed rate in the background. `read_outcome()` reads every output record back and
sums up the delivery promise: claims in, claims with a verdict, verdict records, duplicates,
claims with more than one verdict event_id, lost claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]

from tests.integration.conftest import PARTITIONS, Topics, committed_and_end
from tests.service.claims import FLAGGED_CODES, claim_event, encode

_MARK = "@@ID@@"
_ACCEPTED_TEMPLATE = encode(claim_event(_MARK))
_FLAGGED_TEMPLATE = encode(claim_event(_MARK, FLAGGED_CODES))
EVERY_FLAGGED = 4
"""Every 4th claim of a stream bills add-ons without their primary, so both verdict topics
carry records."""


def claim_id(prefix: str, i: int) -> str:
    return f"{prefix}-{i:07d}"


def claim_records(prefix: str, start: int, count: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of claims `prefix`-start ... start+count-1; every 4th one is flagged."""
    mark = _MARK.encode()
    out = []
    for i in range(start, start + count):
        cid = claim_id(prefix, i).encode()
        template = _FLAGGED_TEMPLATE if i % EVERY_FLAGGED == 0 else _ACCEPTED_TEMPLATE
        out.append((cid, template.replace(mark, cid)))
    return out


async def produce_fast(
    bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes]]
) -> float:
    """Load `records` as fast as one producer goes (acks=all); the seconds it took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=262_144
    )
    await producer.start()
    started = time.monotonic()
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 5_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


class SteadyProducer:
    """Feeds `topic` with claims `prefix`-0, -1, ... at `rate` claims/s until stopped."""

    TICK_S = 0.1

    def __init__(self, bootstrap: str, topic: str, prefix: str, rate: int) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._prefix = prefix
        self._per_tick = max(1, round(rate * self.TICK_S))
        self.produced = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @property
    def claim_ids(self) -> set[str]:
        return {claim_id(self._prefix, i) for i in range(self.produced)}

    async def _run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            next_tick = time.monotonic()
            while not self._stop.is_set():
                records = claim_records(self._prefix, self.produced, self._per_tick)
                acks = [await producer.send(self._topic, v, key=k) for k, v in records]
                await asyncio.gather(*acks)
                self.produced += len(records)
                next_tick += self.TICK_S
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._stop.wait(), max(0.0, next_tick - time.monotonic())
                    )
        finally:
            await producer.stop()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> int:
        """Stop feeding; the number of claims produced (all acknowledged)."""
        self._stop.set()
        if self._task is not None:
            await self._task
        return self.produced

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SteadyProducer]:
        self.start()
        try:
            yield self
        finally:
            await self.stop()


# ------------------------------------------------------------------ reading back ----


async def end_offsets(bootstrap: str, names: Iterable[str]) -> dict[str, int]:
    """Records on each topic (sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await consumer.start()
    try:
        tps = [TopicPartition(n, p) for n in names for p in range(PARTITIONS)]
        out: dict[str, int] = defaultdict(int)
        for tp, end in (await consumer.end_offsets(tps)).items():
            out[tp.topic] += end
        return dict(out)
    finally:
        await consumer.stop()


async def output_records(bootstrap: str, topics: Topics) -> int:
    return sum((await end_offsets(bootstrap, topics.outputs)).values())


async def wait_outputs(bootstrap: str, topics: Topics, *, above: int, timeout_s: float) -> float:
    """Seconds until the output topics hold more than `above` records."""
    started = time.monotonic()
    while True:
        with contextlib.suppress(Exception):  # the broker may still be coming back
            if await output_records(bootstrap, topics) > above:
                return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"no new output record within {timeout_s} s")
        await asyncio.sleep(0.1)


@dataclass
class Outcome:
    """What the output topics say about a set of input claims (verdicts of other claims, e.g.
    an earlier lot's, are left out)."""

    claims_in: int
    verdicts: dict[str, list[str]] = field(default_factory=dict)
    """Verdict event_ids per claim_id, one per verdict record."""
    dead_letters: dict[str | None, list[str]] = field(default_factory=dict)
    """x-dlq-reason per dead-lettered record, by its key (the claim id when it had one)."""
    lost: list[str] = field(default_factory=list)
    """Claims with neither a verdict nor a dead letter."""

    @property
    def verdicts_out(self) -> int:
        return len(self.verdicts)

    @property
    def verdict_records(self) -> int:
        return sum(len(ids) for ids in self.verdicts.values())

    @property
    def duplicated(self) -> int:
        """Verdict records beyond the first per claim (redeliveries)."""
        return self.verdict_records - self.verdicts_out

    @property
    def redelivered_claims(self) -> int:
        return sum(len(ids) > 1 for ids in self.verdicts.values())

    @property
    def conflicting(self) -> list[str]:
        """Claims whose verdict records carry more than one event_id."""
        return [cid for cid, ids in self.verdicts.items() if len(set(ids)) > 1]

    def figures(self) -> dict[str, Any]:
        return {
            "claims_in": self.claims_in,
            "verdicts_out": self.verdicts_out,
            "verdict_records": self.verdict_records,
            "dead_letters": sum(len(v) for v in self.dead_letters.values()),
            "lost": len(self.lost),
            "duplicated": self.duplicated,
            "redelivered_claims": self.redelivered_claims,
        }

    def assert_delivered(self) -> None:
        """The promise: every claim judged, one verdict event_id per claim."""
        assert [] == self.lost[:20], f"{len(self.lost)} claims lost"
        assert [] == self.conflicting[:20], "claims with more than one verdict event_id"


async def read_outcome(
    bootstrap: str, topics: Topics, claim_ids: set[str], *, timeout_s: float = 120
) -> Outcome:
    """Read every output record (from the beginning, no group) once each claim in `claim_ids`
    has a verdict or a dead letter, or `timeout_s` passed; then tally."""
    deadline = time.monotonic() + timeout_s
    while True:
        outcome = await _tally(bootstrap, topics, claim_ids)
        if not outcome.lost or time.monotonic() > deadline:
            return outcome
        await asyncio.sleep(1.0)


async def _tally(bootstrap: str, topics: Topics, claim_ids: set[str]) -> Outcome:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    verdicts: dict[str, list[str]] = defaultdict(list)
    dead: dict[str | None, list[str]] = defaultdict(list)
    try:
        tps = [TopicPartition(n, p) for n in topics.outputs for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= ends[tp]:
                        continue
                    if r.topic == topics.dead_letter:
                        reasons = [v for k, v in r.headers if k == "x-dlq-reason"]
                        key = r.key.decode(errors="replace") if r.key is not None else None
                        dead[key].append(reasons[0].decode() if reasons else "")
                    else:
                        verdict = orjson.loads(r.value)
                        if verdict["claim_id"] in claim_ids:
                            verdicts[verdict["claim_id"]].append(verdict["event_id"])
    finally:
        await consumer.stop()
    lost = sorted(cid for cid in claim_ids if cid not in verdicts and cid not in dead)
    return Outcome(len(claim_ids), dict(verdicts), dict(dead), lost)


async def wait_committed(bootstrap: str, topics: Topics, timeout_s: float = 120) -> dict[int, int]:
    """Until the group's committed offsets equal the input's end offsets; tolerates a broker
    still coming back (e.g. no group coordinator yet)."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            committed, ends = await committed_and_end(bootstrap, topics.submitted, topics.group)
        except Exception as exc:  # asked again until the deadline
            last = exc
        else:
            if committed == ends:
                return committed
            last = (committed, ends)
        await asyncio.sleep(0.25)
    raise AssertionError(f"committed offsets != end offsets after {timeout_s} s: {last}")
