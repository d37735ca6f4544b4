"""Publish the shipped sample claims to Kafka and print the service's verdicts as a table.

Used by `scripts/demo.sh`; it expects the service to be running against the same broker.
Topics come from the same CLAIMS_* settings the service reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import textwrap
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from service.settings import load_settings
from service.topics import create_topics, service_topics

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 3
"""Like docker-compose's kafka-init: the service declares no topics, the deployment does."""


async def end_offsets(consumer: AIOKafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    return await consumer.end_offsets(tps) if tps else {}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=[str(ROOT / "samples" / "claims.jsonl"),
                                                     str(ROOT / "samples" / "unreadable.jsonl")])
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--topics-only", action="store_true", help="create the topics and stop")
    args = parser.parse_args()

    settings = load_settings()
    bootstrap = settings.kafka.bootstrap_servers
    topics = settings.topics
    outputs = [topics.accepted, topics.flagged, topics.dead_letter]
    created = await create_topics(
        settings.kafka, service_topics(topics), partitions=PARTITIONS
    )
    if created:
        print(f"created topics {', '.join(created)}", file=sys.stderr)
    if args.topics_only:
        return 0
    events = read_events(args.files)

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    try:
        starts: dict[TopicPartition, int] = {}
        for topic in outputs:
            starts.update(await end_offsets(consumer, topic))
        sent_ids = []
        for raw in events:
            try:
                key = json.loads(raw)["claim"]["claim_id"].encode()
            except Exception:  # an unreadable sample has no claim id: no key
                key = None
            sent_ids.append(key.decode() if key else None)
            await producer.send_and_wait(topics.submitted, raw, key=key)
        print(f"published {len(events)} events to {topics.submitted}", file=sys.stderr)

        deadline = time.monotonic() + args.timeout
        consumer.assign(list(starts))
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        rows: list[tuple[str, str, str, str]] = []
        while len(rows) < len(events) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for rec in records:
                    rows.append(describe(tp.topic, rec, topics.dead_letter))
    finally:
        await producer.stop()
        await consumer.stop()

    print_table(rows)
    missing = len(events) - len(rows)
    if missing > 0:
        print(f"\n{missing} event(s) got no verdict within {args.timeout:.0f} s", file=sys.stderr)
        return 1
    return 0


def read_events(files: list[str]) -> list[bytes]:
    return [line for f in files for line in Path(f).read_bytes().splitlines() if line.strip()]


def describe(topic: str, rec: object, dead_letter: str) -> tuple[str, str, str, str]:
    value = rec.value  # type: ignore[attr-defined]
    if topic == dead_letter:
        headers = {k: v.decode() for k, v in rec.headers}  # type: ignore[attr-defined]
        origin = [headers.get(f"x-dlq-{k}", "?") for k in ("topic", "partition", "offset")]
        where = f"{origin[0]}[{origin[1]}]@{origin[2]}"
        return ("(unreadable)", "dead-letter", headers.get("x-dlq-reason", "?"), where)
    verdict = json.loads(value)
    findings = ", ".join(
        f"{f['rule_id']}" + (f"@{f['line_number']}" if f["line_number"] else "")
        for f in verdict["findings"]
    )
    return (verdict["claim_id"], verdict["verdict"], findings or "-", topic)


FINDINGS_WIDTH = 64


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    """Claims in id order, dead letters last; long finding lists wrap inside their column."""
    rows = sorted(rows, key=lambda r: (r[0] == "(unreadable)", r[0]))
    head = ("claim", "verdict", "findings (rule@line)", "topic / origin")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(2)] + [FINDINGS_WIDTH]
    print(f"{head[0]:<{widths[0]}}  {head[1]:<{widths[1]}}  {head[2]:<{widths[2]}}  {head[3]}")
    print("  ".join("-" * w for w in widths) + "  " + "-" * 16)
    for claim, verdict, findings, where in rows:
        parts = textwrap.wrap(findings, FINDINGS_WIDTH, break_on_hyphens=False) or ["-"]
        print(f"{claim:<{widths[0]}}  {verdict:<{widths[1]}}  {parts[0]:<{widths[2]}}  {where}")
        for more in parts[1:]:
            print(f"{'':<{widths[0]}}  {'':<{widths[1]}}  {more}")


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
