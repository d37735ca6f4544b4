"""The official Java Kafka tools, run as subprocesses: a producer and a consumer that share no
code with the service's client library, and the broker's own log-segment dump.

The jars come from Maven Central through `scripts/kafka-local.sh fetch-tools` (console
producer and consumer, with the snappy, lz4 and zstd codec jars of kafka-clients) and
`fetch` (the broker, whose jar holds DumpLogSegments).
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CODECS",
    "Batch",
    "dump_batches",
    "java_consume",
    "java_produce",
    "tools_dir",
]

REPO = Path(__file__).resolve().parents[2]
LOCAL_SCRIPT = REPO / "scripts" / "kafka-local.sh"

CODECS = ("gzip", "snappy", "lz4", "zstd")
"""Every compression codec Kafka has (besides none)."""

_JVM = ("-Xms64m", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true")
"""Short-lived tools: a small heap and the quick JIT tier start fastest."""


@functools.cache
def tools_dir() -> Path:
    """The client tools' jars (fetched on first use; a failed fetch fails the test)."""
    done = subprocess.run(
        [str(LOCAL_SCRIPT), "fetch-tools"], capture_output=True, text=True, timeout=600
    )
    assert 0 == done.returncode, f"kafka-local.sh fetch-tools failed:\n{done.stderr[-2000:]}"
    return Path(done.stdout.strip().splitlines()[-1])


def _java(jars: Path, main: str, args: Sequence[str]) -> list[str]:
    return [
        "java",
        *_JVM,
        f"-Dlog4j2.configurationFile={tools_dir() / 'log4j2.properties'}",
        "-cp",
        f"{jars}/*",
        main,
        *args,
    ]


def _properties(flag: str, props: dict[str, str]) -> list[str]:
    return [arg for key, value in props.items() for arg in (flag, f"{key}={value}")]


def java_produce(
    bootstrap: str,
    topic: str,
    lines: Sequence[bytes],
    *,
    compression: str,
    key_separator: bytes | None = None,
    linger_ms: int = 5_000,
    timeout_s: float = 60,
) -> None:
    """Produce `lines` (one record each; `key<sep>value` when `key_separator` is given) with
    the Java console producer, compressed with `compression`, and wait until it exits 0.

    A long linger and a large batch size make the records of a partition travel in a few
    batches; the producer sends them all when stdin closes, so the linger costs no time.
    """
    assert all(b"\n" not in line for line in lines), "one record per line"
    reader: dict[str, str] = {}
    if key_separator is not None:
        reader = {"parse.key": "true", "key.separator": key_separator.decode()}
    producer = {
        "linger.ms": str(linger_ms),
        "batch.size": str(1 << 20),
        "acks": "all",
    }
    args = [
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        # The console producer sets compression.type from this option, over any
        # --producer-property, so the codec is named here.
        "--compression-codec",
        compression,
        *_properties("--producer-property", producer),
        *_properties("--property", reader),
    ]
    done = subprocess.run(
        _java(tools_dir(), "org.apache.kafka.tools.ConsoleProducer", args),
        input=b"".join(line + b"\n" for line in lines),
        capture_output=True,
        timeout=timeout_s,
    )
    assert 0 == done.returncode, (
        f"console producer exited {done.returncode}:\n{done.stderr.decode(errors='replace')}"
    )


def java_consume(
    bootstrap: str, topics: Sequence[str], *, count: int, timeout_s: float = 60
) -> list[tuple[bytes, bytes]]:
    """(key, value) of the first `count` records on `topics`, read from the beginning by the
    Java console consumer (no offsets committed)."""
    include = "|".join(re.escape(t) for t in topics)
    args = [
        "--bootstrap-server",
        bootstrap,
        "--include",
        f"^({include})$",
        "--from-beginning",
        "--max-messages",
        str(count),
        "--timeout-ms",
        str(int(timeout_s * 1000)),
        "--property",
        "print.key=true",
        "--property",
        "key.separator=\t",
        "--consumer-property",
        "enable.auto.commit=false",
    ]
    done = subprocess.run(
        _java(tools_dir(), "org.apache.kafka.tools.consumer.ConsoleConsumer", args),
        capture_output=True,
        timeout=timeout_s + 30,
    )
    assert 0 == done.returncode, (
        f"console consumer exited {done.returncode}:\n{done.stderr.decode(errors='replace')}"
    )
    records = []
    for line in done.stdout.splitlines():
        key, _, value = line.partition(b"\t")
        records.append((key, value))
    return records


@dataclass(frozen=True)
class Batch:
    """One record batch as the broker stored it."""

    partition_dir: str
    base_offset: int
    count: int
    codec: str
    valid: bool


_DUMPING = re.compile(r"^Dumping .*/([^/]+)/\d+\.log$")
_BATCH = re.compile(
    r"^baseOffset: (\d+) .*\bcount: (\d+) .*\bcompresscodec: (\w+) .*\bisvalid: (\w+)"
)


def dump_batches(segment_files: Sequence[Path]) -> list[Batch]:
    """Every record batch in `segment_files`, read by the broker's own DumpLogSegments (the
    codec and CRC check of what is on disk, independent of any client)."""
    assert segment_files, "no log segments to dump"
    broker_libs = tools_dir().parent / "libs"
    args = ["--files", ",".join(str(f) for f in segment_files)]
    done = subprocess.run(
        _java(broker_libs, "kafka.tools.DumpLogSegments", args),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 0 == done.returncode, f"DumpLogSegments exited {done.returncode}:\n{done.stderr}"
    batches = []
    partition_dir = ""
    for line in done.stdout.splitlines():
        if dumping := _DUMPING.match(line):
            partition_dir = dumping.group(1)
        elif batch := _BATCH.match(line):
            batches.append(
                Batch(
                    partition_dir,
                    int(batch.group(1)),
                    int(batch.group(2)),
                    batch.group(3),
                    batch.group(4) == "true",
                )
            )
    return batches
