"""The one error type of the data layer, and rate-limited warnings for skipped records.

A configuration or environment problem (missing path, unknown column, unreachable dataset)
raises `DataError` with one line naming what is wrong and what to do. A single bad record
(an undecodable JSON line, a missing blob, an unreadable file) is skipped with a warning on
the `soma_ray.data` logger: one bad record never stops a stream.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from soma_ray.errors import InputError

if TYPE_CHECKING:
    from soma_ray.data.filters import FilterStats

__all__ = ["DataError", "SkipLog", "first_line", "logger"]

logger = logging.getLogger("soma_ray.data")


class DataError(InputError):
    """Bad data input, as one line: what is wrong, and the fix (entry points exit with status 2)."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as `Type: first line of its message`, cut to `limit` characters."""
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    line = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


class SkipLog:
    """Warn about skipped records: the first `max_warnings` one by one, then a single notice.

    A stream of millions of records with a systematic defect would otherwise flood the log;
    `skipped` keeps counting after the warnings stop, and so does `stats.unreadable` when a
    `FilterStats` is given.
    """

    def __init__(self, what: str, max_warnings: int = 20, stats: FilterStats | None = None) -> None:
        self.what = what
        self.max_warnings = max_warnings
        self.skipped = 0
        self.stats = stats

    def skip(self, message: str) -> None:
        self.skipped += 1
        if self.stats is not None:
            self.stats.seen += 1
            self.stats.unreadable += 1
        if self.skipped <= self.max_warnings:
            logger.warning("%s: %s; skipped", self.what, message)
            if self.skipped == self.max_warnings:
                logger.warning("%s: further skipped records are not logged one by one", self.what)
