"""Logging set-up: one JSON (or console) pipeline for our structlog lines and everyone else's.

`configure_logging()` is called once by the composition root. Our own code logs through structlog;
FastStream and aiokafka log through stdlib `logging`, whose root handler renders with the same
processors (`structlog.stdlib.ProcessorFormatter`), so every line on stdout has one shape.

Claims carry patient data, so the pipeline is built to never leak it: tracebacks are rendered
without local variables, and nothing here adds message bodies. Callers log identifiers only.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import Processor

from service.settings import Settings

__all__ = [
    "FRAMEWORK_LOGGER",
    "VERDICT_LOGGER",
    "configure_logging",
    "flush_logs",
    "framework_logger",
]

FRAMEWORK_LOGGER = "claims_validator.faststream"
"""Stdlib logger handed to FastStream (app and broker) so its lines reach our root handler."""

VERDICT_LOGGER = "claims_validator.verdicts"
"""The one-line-per-claim logger. Its lines are written without a flush each (the batch
handler calls `flush_logs()` once per batch); every other logger flushes each line."""

_FASTSTREAM_EXTRA = ("topic", "group_id", "message_id")
"""Fields FastStream puts in `extra=` of its own log calls; message_id is `offset-timestamp`."""


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


class _LineWriter:
    """structlog's final logger: writes rendered lines to a text stream."""

    def __init__(self, stream: TextIO, *, flush_each: bool) -> None:
        self._write = stream.write
        self._flush = stream.flush if flush_each else None

    def msg(self, message: str) -> None:
        self._write(message + "\n")
        if self._flush is not None:
            self._flush()

    debug = info = warning = error = critical = exception = msg


_stream: TextIO | None = None


def flush_logs() -> None:
    """Flush buffered verdict lines (called once per batch)."""
    if _stream is not None:
        _stream.flush()


def configure_logging(
    settings: Settings, *, stream: TextIO | None = None, cache: bool = True
) -> None:
    """Configure structlog and stdlib logging once per process; `stream` defaults to stdout.

    `cache=False` is for tests: cached loggers would ignore a later `capture_logs()`.
    """
    global _stream
    out = _stream = stream if stream is not None else sys.stdout
    level = logging.getLevelNamesMapping()[settings.log.level]
    fmt = settings.log.format
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())

    renderer: Processor
    if as_json:
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
        exceptions: list[Processor] = [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=out.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        exceptions = []

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, *exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *args: _LineWriter(
            out, flush_each=not args or args[0] != VERDICT_LOGGER
        ),
        cache_logger_on_first_use=cache,
    )

    handler = logging.StreamHandler(out)
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
