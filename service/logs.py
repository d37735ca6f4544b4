"""Logging set-up: one JSON (or console) pipeline for our structlog lines and everyone else's.

`configure_logging()` is called once by the composition root. Our own code logs through structlog;
FastStream and aiokafka log through stdlib `logging`, whose root handler renders with the same
processors (`structlog.stdlib.ProcessorFormatter`), so every line on stdout has one shape.

Claims carry patient data, so the pipeline is built to never leak it: tracebacks are rendered
without local variables, and nothing here adds message bodies. Callers log identifiers only.

The service writes one verdict line per claim, so that path is kept short: structlog's own
processors (no stdlib `logging` on our own lines) with orjson as the JSON serializer,
`log_verdicts()` running the processor chain over a whole batch, and verdict lines kept in
memory until `flush_logs()` writes the batch's lines in one call (with PYTHONUNBUFFERED, as in
the container, every write is a system call). Any other line first writes the kept verdict
lines, so the lines stay in the order they were logged. `scripts/bench_logs.py` measures the
batch path against one bound-logger call per line.

The Kafka client's loggers never log below INFO (at DEBUG they print protocol requests, SASL
credentials among them); repeated library warnings are rate-limited; a commit refused by a
rebalance is a warning, not FastStream's CRITICAL.
"""

from __future__ import annotations

import atexit
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final, TextIO

import orjson
import structlog
from aiokafka.errors import (  # type: ignore[import-untyped]
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import Processor

from service.settings import Settings

__all__ = [
    "FRAMEWORK_LOGGER",
    "VERDICT_LOGGER",
    "configure_logging",
    "flush_logs",
    "framework_logger",
    "log_verdicts",
]

FRAMEWORK_LOGGER = "claims_validator.faststream"
"""Stdlib logger handed to FastStream (app and broker) so its lines reach our root handler."""

VERDICT_LOGGER = "claims_validator.verdicts"
"""The one-line-per-claim logger (`log_verdicts()` writes a batch's lines). Its lines are kept
in memory until `flush_logs()` (once per batch); every other logger writes and flushes each
line at once."""

_FASTSTREAM_EXTRA = ("topic", "group_id", "message_id", "suppressed_before")
"""Fields FastStream puts in `extra=` of its own log calls; message_id is `offset-timestamp`."""

_KEPT_LINES_LIMIT = 10_000
"""Verdict lines kept before they are written without waiting for `flush_logs()`."""


def _orjson(obj: Any, **kwargs: Any) -> str:
    """JSONRenderer's serializer: orjson (non-JSON values as their str, like json.dumps's
    default=str)."""
    return orjson.dumps(obj, default=str).decode()


def _only_with_exc_info(processor: Processor) -> Processor:
    """`processor` for the lines that carry `exc_info` (`log.exception()` sets it); the others,
    every verdict line, skip the call."""

    def maybe(logger: Any, method: str, event_dict: Any) -> Any:
        if "exc_info" in event_dict:
            return processor(logger, method, event_dict)
        return event_dict

    return maybe


class _Output:
    """The stream every line goes to. Verdict lines are kept (`later`) until `flush()`; any
    other line (`now`) writes the kept ones first, then itself, and flushes."""

    def __init__(self, stream: TextIO) -> None:
        self._write = stream.write
        self._flush = stream.flush
        self._kept: list[str] = []

    def later(self, line: str) -> None:
        self._kept.append(line)
        if len(self._kept) >= _KEPT_LINES_LIMIT:
            self.flush()

    def now(self, line: str) -> None:
        if self._kept:
            self._write_kept()
        self._write(line + "\n")
        self._flush()

    def flush(self) -> None:
        if self._kept:
            self._write_kept()
            self._flush()

    def _write_kept(self) -> None:
        lines, self._kept = self._kept, []
        lines.append("")  # the last newline
        self._write("\n".join(lines))


class _LineWriter:
    """structlog's final logger: hands rendered lines to the output, kept or at once."""

    def __init__(self, output: _Output, *, keep: bool) -> None:
        self.msg = output.later if keep else output.now
        self.debug = self.info = self.warning = self.error = self.critical = self.msg
        self.exception = self.msg


CLIENT_LOGGERS: Final = ("aiokafka", "kafka")
"""The Kafka client's loggers: never below INFO, whatever the service's level (at DEBUG the
client logs protocol requests, SASL authentication with its password among them)."""

_ROUTINE_COMMIT_FAILURES: Final = (
    CommitFailedError,
    RebalanceInProgressError,
    IllegalGenerationError,
    UnknownMemberIdError,
)
"""A commit refused because the group is rebalancing: the batch is consumed again by the
partition's next owner. FastStream logs it as CRITICAL; it is routine."""


class _Routine(logging.Filter):
    """A failed commit during a rebalance is a warning without a traceback, not CRITICAL."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno >= logging.ERROR and isinstance(exc, _ROUTINE_COMMIT_FAILURES):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = (
                f"commit_refused_by_rebalance ({type(exc).__name__}): the batch is consumed "
                "again by the partition's next owner"
            )
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


class _RateLimit(logging.Filter):
    """At most `burst` lines per `period_s` of one kind (logger, level, message template) from
    the libraries; the rest are counted and reported in one `log_lines_suppressed` line when
    the period ends. A broker outage otherwise floods the log with the same client error."""

    def __init__(
        self, burst: int = 5, period_s: float = 30.0, clock: Any = time.monotonic
    ) -> None:
        super().__init__()
        self._burst = burst
        self._period = period_s
        self._clock = clock
        self._seen: dict[tuple[str, int, str], list[float]] = {}
        """Per kind: [period start, lines in it, lines suppressed]."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(_OUR_PREFIX) or record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg)[:200])
        now = self._clock()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self._period:
            suppressed = int(entry[2]) if entry is not None else 0
            self._seen[key] = [now, 1.0, 0.0]
            if suppressed:
                record.suppressed_before = suppressed
            if len(self._seen) > _RATE_LIMIT_KINDS:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self._period}
            return True
        entry[1] += 1
        if entry[1] <= self._burst:
            return True
        entry[2] += 1
        return False


_OUR_PREFIX: Final = "claims_validator."
_RATE_LIMIT_KINDS: Final = 1_000


class _OutputHandler(logging.Handler):
    """The stdlib root handler: FastStream's, aiokafka's and uvicorn's lines, in order with
    ours."""

    def __init__(self, output: _Output) -> None:
        super().__init__()
        self._output = output
        self.addFilter(_Routine())
        self.addFilter(_RateLimit())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._output.now(self.format(record))
        except Exception:  # as logging.StreamHandler: report, never raise into the caller
            self.handleError(record)


_output: _Output | None = None


def flush_logs() -> None:
    """Write the kept verdict lines (called once per batch, and at exit)."""
    if _output is not None:
        _output.flush()


atexit.register(flush_logs)


_verdict_logger = structlog.get_logger(VERDICT_LOGGER)


def log_verdicts(lines: Iterable[Mapping[str, Any]]) -> None:
    """One `verdict` line at info on the verdict logger per mapping of fields: the lines
    `structlog.get_logger(VERDICT_LOGGER).info("verdict", **fields)` writes (the configured
    processors run on each, `capture_logs()` sees them), at under half the cost: the
    bound-logger layers around the processors (level dispatch, keyword re-packing, context
    copy) are crossed once per call instead of once per line."""
    if not _verdict_logger.bind().is_enabled_for(logging.INFO):
        return
    config = structlog.get_config()
    processors: list[Processor] = config["processors"]
    sink = config["logger_factory"](VERDICT_LOGGER)
    for fields in lines:
        event_dict: Any = dict(fields)
        event_dict["event"] = "verdict"
        try:
            for processor in processors:
                event_dict = processor(sink, "info", event_dict)
        except structlog.DropEvent:
            continue
        # What structlog hands the final logger for each kind of processor result.
        if isinstance(event_dict, str | bytes | bytearray):
            sink.info(event_dict)
        elif isinstance(event_dict, tuple):
            sink.info(*event_dict[0], **event_dict[1])
        else:
            sink.info(**event_dict)


def configure_logging(
    settings: Settings, *, stream: TextIO | None = None, cache: bool = True
) -> None:
    """Configure structlog and stdlib logging once per process; `stream` defaults to stdout.

    `cache=False` is for tests: cached loggers would ignore a later `capture_logs()`.
    """
    global _output
    flush_logs()  # lines kept for an earlier stream go there
    out = stream if stream is not None else sys.stdout
    output = _output = _Output(out)
    level = logging.getLevelNamesMapping()[settings.log.level]
    fmt = settings.log.format
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())

    renderer: Processor
    if as_json:
        renderer = structlog.processors.JSONRenderer(serializer=_orjson)
        exceptions: list[Processor] = [
            _only_with_exc_info(
                structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
            )
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=out.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        exceptions = []

    shared: list[Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, *exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *args: _LineWriter(
            output, keep=bool(args) and args[0] == VERDICT_LOGGER
        ),
        cache_logger_on_first_use=cache,
    )

    handler = _OutputHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(allow=_FASTSTREAM_EXTRA),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *exceptions,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    # FastStream's default loggers ("faststream", "faststream.access.*") bring their own
    # coloured stdout handler and do not propagate; route them through ours instead.
    for name in _framework_logger_names():
        framework = logging.getLogger(name)
        framework.handlers.clear()
        framework.propagate = True
        framework.setLevel(logging.NOTSET)


def _framework_logger_names() -> list[str]:
    names = [
        name
        for name in logging.Logger.manager.loggerDict
        if name == "faststream" or name.startswith("faststream.")
    ]
    return [*names, "faststream"] if "faststream" not in names else names


def framework_logger() -> logging.Logger:
    """The stdlib logger FastStream writes to; it propagates to the root handler above."""
    logger = logging.getLogger(FRAMEWORK_LOGGER)
    logger.propagate = True
    return logger
