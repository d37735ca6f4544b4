"""`claims-validator ingest`: 837P files in, `claim.submitted` events out.

Events go to standard output as JSON Lines, or with `--publish` to the input topic the settings
name (key = claim_id, acks=all, every acknowledgement awaited). Each problem is one JSON object
on standard error naming the file and the segment position: an X12 error pyx12 found, a claim
rejected for it, a claim that could not be mapped, a file that could not be read. None of them
carries a member ID or a birth date.
"""

from __future__ import annotations

import asyncio
import csv
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from service.exitcodes import ExitCode
from service.intake.x12_claims import Assembler, Emitted, Problem
from service.intake.x12_read import (
    EndOfFile,
    MissingExtra,
    SegmentRecord,
    X12Unreadable,
    read_segments,
    read_text_segments,
    require_pyx12,
)

__all__ = [
    "PayerMapError",
    "ingest_files",
    "load_payer_map",
    "main_ingest",
    "results",
    "text_results",
]


class PayerMapError(Exception):
    pass


def load_payer_map(path: Path) -> dict[str, str]:
    """A CSV with the header `x12_payer_id,payer_id`: 2010BB NM109 -> the service's payer id."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # Excel writes a BOM
            rows = list(csv.DictReader(handle))
            fields = rows[0].keys() if rows else set()
    except OSError as exc:
        raise PayerMapError(f"{path}: {exc.strerror}") from None
    if rows and not {"x12_payer_id", "payer_id"} <= set(fields):
        raise PayerMapError(f"{path}: the header must be x12_payer_id,payer_id")
    mapping: dict[str, str] = {}
    for number, row in enumerate(rows, 2):
        x12_id, payer = (row.get("x12_payer_id") or "").strip(), (row.get("payer_id") or "").strip()
        if not x12_id or not payer:
            raise PayerMapError(f"{path} line {number}: x12_payer_id and payer_id are required")
        if x12_id.upper() in mapping:
            raise PayerMapError(f"{path} line {number}: x12_payer_id {x12_id} is repeated")
        mapping[x12_id.upper()] = payer
    return mapping


def results(path: Path, payer_ids: Mapping[str, str]) -> Iterator[Emitted | Problem]:
    """What one file gives, in file order: events and problems."""
    return _results(str(path), read_segments(path), payer_ids)


def text_results(
    text: str, source: str, payer_ids: Mapping[str, str]
) -> Iterator[Emitted | Problem]:
    """`results` for X12 text in memory (the what-if page's upload), named `source`."""
    return _results(source, read_text_segments(text), payer_ids)


def _results(
    source: str, segments: Iterator[SegmentRecord | EndOfFile], payer_ids: Mapping[str, str]
) -> Iterator[Emitted | Problem]:
    assembler = Assembler(source, payer_ids)
    try:
        for item in segments:
            yield from assembler.feed(item)
    except X12Unreadable as exc:
        yield from assembler.abort("x12-unreadable", exc.position, exc.detail)
    except OSError as exc:
        detail = exc.strerror or type(exc).__name__
        yield from assembler.abort("file-unreadable", assembler.position + 1, detail)
    except Exception as exc:  # pyx12 failing inside: the file is lost, not the run
        # The type only: a library's message may quote the segment it choked on.
        detail = f"pyx12 failed on this file: {type(exc).__name__}"
        yield from assembler.abort("x12-unreadable", assembler.position + 1, detail)


def _problem(err: IO[bytes], problem: Problem) -> None:
    err.write(orjson.dumps(problem.fields) + b"\n")
    err.flush()


def ingest_files(
    paths: list[Path], payer_ids: Mapping[str, str], out: IO[bytes], err: IO[bytes]
) -> tuple[int, int]:
    """Write events as JSON Lines; return (events written, problems reported)."""
    written = problems = 0
    for path in paths:
        for result in results(path, payer_ids):
            if isinstance(result, Problem):
                problems += 1
                _problem(err, result)
            else:
                out.write(result.event_json + b"\n")
                written += 1
    out.flush()
    return written, problems


@dataclass(slots=True)
class _Tally:
    acknowledged: int = 0
    problems: int = 0
    failed: int = 0


class _NoBroker(Exception):
    """The producer could not start."""


async def _publish(
    paths: list[Path], payer_ids: Mapping[str, str], settings: Any, err: IO[bytes]
) -> _Tally:
    """Publish every event, awaiting each acknowledgement; stop at the first failed send."""
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
    from faststream.kafka.security import parse_security

    kafka = settings.kafka
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.servers,
        client_id=f"{kafka.client_id}-ingest",
        request_timeout_ms=kafka.request_timeout_ms,
        acks="all",
        enable_idempotence=True,  # a retried send is written once
        **parse_security(kafka.security()),
    )
    tally = _Tally()
    try:
        try:
            await producer.start()
        except Exception as exc:
            raise _NoBroker(type(exc).__name__) from exc
        topic = settings.topics.submitted
        for path in paths:
            if not await _publish_file(producer, topic, path, payer_ids, err, tally):
                stopped = {
                    "error": "publish-stopped",
                    "source": str(path),
                    "detail": "a send failed: the claims after it in this file and the files "
                    "after it were not read",
                }
                _problem(err, Problem(stopped))
                break
    finally:
        await producer.stop()
    return tally


async def _publish_file(
    producer: Any,
    topic: str,
    path: Path,
    payer_ids: Mapping[str, str],
    err: IO[bytes],
    tally: _Tally,
) -> bool:
    """One file's events; False when a send failed (the file was not read to its end)."""
    pending: list[tuple[str, Any]] = []
    sending = True
    for result in results(path, payer_ids):
        if isinstance(result, Problem):
            tally.problems += 1
            _problem(err, result)
            continue
        claim_id = result.claim_id
        try:
            future = await producer.send(
                topic, result.event_json, key=claim_id.encode()
            )
        except Exception as exc:
            pending.append((claim_id, _failed(exc)))
            sending = False
            break
        pending.append((claim_id, future))
    for claim_id, future in pending:
        try:
            await future
            tally.acknowledged += 1
        except Exception as exc:  # every failed claim is named, none is lost silently
            tally.failed += 1
            failed = {
                "error": "publish-failed",
                "source": str(path),
                "claim_id": claim_id,
                "detail": type(exc).__name__,
            }
            _problem(err, Problem(failed))
    return sending


def _failed(exc: Exception) -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


def main_ingest(files: list[str], payer_map: Path | None, publish: bool) -> int:
    try:
        require_pyx12()
    except MissingExtra as exc:
        print(f"claims-validator ingest: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    try:
        payer_ids = load_payer_map(payer_map) if payer_map else {}
    except PayerMapError as exc:
        print(f"claims-validator ingest: payer map: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    paths = [Path(f) for f in files]
    if not publish:
        _, problems = ingest_files(paths, payer_ids, sys.stdout.buffer, sys.stderr.buffer)
        return ExitCode.INPUT if problems else ExitCode.OK

    from service.settings import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"claims-validator: configuration error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    try:
        tally = asyncio.run(_publish(paths, payer_ids, settings, sys.stderr.buffer))
    except _NoBroker as exc:
        print(
            f"claims-validator ingest: cannot publish to {settings.kafka.bootstrap_servers}: "
            f"{exc}",
            file=sys.stderr,
        )
        return ExitCode.INPUT
    print(f"published {tally.acknowledged} claim.submitted events to {settings.topics.submitted}")
    if tally.failed:
        return ExitCode.PUBLISH_FAILED
    return ExitCode.INPUT if tally.problems else ExitCode.OK
