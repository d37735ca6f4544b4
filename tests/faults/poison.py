"""Records no ordinary producer would write, for the poison-record scenarios.

Most kinds are plain values or headers. A header KEY that is not UTF-8 cannot be produced with
aiokafka (it encodes keys from str), so `produce_raw_header_key()` builds the record batch with
a placeholder key of the same length, swaps the bytes in and recomputes the batch's CRC-32C,
which covers everything after the CRC field (Kafka's v2 record batch layout).
"""

from __future__ import annotations

import struct
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.producer.message_accumulator import BatchBuilder  # type: ignore[import-untyped]
from aiokafka.record.util import calc_crc32c  # type: ignore[import-untyped]

from tests.service.claims import claim_event, encode

CRC_OFFSET = struct.calcsize(">qiib")
"""baseOffset, batchLength, partitionLeaderEpoch, magic: then the CRC-32C."""
CRC_FROM = CRC_OFFSET + 4
"""The CRC covers the batch from its attributes field to the end."""
PLACEHOLDER_KEY = "\x01\x02KEY\x03"
BAD_KEY = b"\xff\xfeKEY\xc3"
"""Same length as the placeholder; not UTF-8 (0xff never occurs in it)."""


class _SwappedHeaderKey(BatchBuilder):  # type: ignore[misc]
    """A batch whose built bytes carry BAD_KEY wherever PLACEHOLDER_KEY was appended."""

    def _build(self) -> Any:
        if self._buffer is not None:  # built (and swapped) already: the sender asks again
            return self._buffer
        built = bytearray(super()._build())
        at = built.find(PLACEHOLDER_KEY.encode())
        while at >= 0:
            built[at : at + len(BAD_KEY)] = BAD_KEY
            at = built.find(PLACEHOLDER_KEY.encode(), at)
        struct.pack_into(">I", built, CRC_OFFSET, calc_crc32c(bytes(built[CRC_FROM:])))
        self._buffer = built
        return built


async def produce_raw_header_key(
    bootstrap: str, topic: str, key: bytes, value: bytes, partition: int = 0
) -> int:
    """One record whose header key is the non-UTF-8 BAD_KEY; its offset."""
    return await produce_batch_with_bad_header_keys(
        bootstrap, topic, [(key, value, True)], partition
    )


async def produce_batch_with_bad_header_keys(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes, bool]], partition: int = 0
) -> int:
    """One record batch of (key, value, bad) to `partition`, the bad ones with the header key
    BAD_KEY (the others with a plain one); the batch's base offset."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        batch = _SwappedHeaderKey(16_384, 0)  # 0: no compression
        for key, value, bad in records:
            header = (PLACEHOLDER_KEY if bad else "trace-id", b"v")
            batch.append(timestamp=None, key=key, value=value, headers=[header])
        metadata = await (await producer.send_batch(batch, topic, partition=partition))
        offset: int = metadata.offset
        return offset
    finally:
        await producer.stop()


def huge_event(claim_id: str, lines: int = 300_000) -> bytes:
    """A claim of `lines` empty service lines (three bytes each)."""
    event = claim_event(claim_id)
    event["claim"]["service_lines"] = [{}] * lines
    return orjson.dumps(event)


def many_findings_event(claim_id: str, codes: int = 60_000) -> bytes:
    """A readable claim whose `codes` diagnosis codes are numbers, not strings: one schema
    problem (a CLAIM_MALFORMED finding) each, a verdict of several megabytes if judged
    without a limit."""
    event = claim_event(claim_id)
    event["claim"]["diagnosis_codes"] = [0] * codes
    return orjson.dumps(event)


def big_integer_event(claim_id: str) -> bytes:
    """A claim whose units and charge are integers far beyond 64 bits."""
    text = encode(claim_event(claim_id)).decode()
    big = "9" * 40
    text = text.replace('"units":1', f'"units":{big}', 1)
    text = text.replace('"charge_amount":"150.00"', f'"charge_amount":{big}', 1)
    assert big in text
    return text.encode()
