"""The one exit-code scheme of every `claims-validator` command.

Each code means the same thing in every command; the README lists them once.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    OK = 0
    """Done: every input was handled (serve: a clean drain after SIGTERM)."""
    INPUT = 1
    """An input could not be used: an unreadable line, record or official file, an unreachable
    or refusing broker at start-up, a port already taken."""
    USAGE = 2
    """The command line is wrong (`check` and `rules import` also say so of a file it names that
    does not exist; `ingest` reports such a file as unreadable input and reads the others)."""
    CONFIG = 3
    """The configuration or the rule table is invalid; the message names the file or the
    setting and the field."""
    SHUTDOWN_ABANDONED = 4
    """SIGTERM: the batch in flight could not finish within the shutdown bound and was left
    uncommitted (it is consumed again after the restart; nothing is lost)."""
    PUBLISH_FAILED = 5
    """Publishing kept failing past its bound, or the producer could not be rebuilt; nothing
    was committed past the last acknowledged batch."""
    INTERNAL_ERRORS = 6
    """Too many recent records failed with an internal error: the service stopped instead of
    dead-lettering the stream (the batch that tripped the brake was not committed)."""
