"""One check's outcome: a name, a level and one line that says what to fix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    OK = "ok"
    INFO = "info"  # worth knowing, nothing to fix
    WARN = "warn"  # a problem, but not one this recipe needs fixed
    FAIL = "fail"  # this recipe will not run until it is fixed


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    message: str


def ok(name: str, message: str) -> Check:
    return Check(name, Level.OK, message)


def info(name: str, message: str) -> Check:
    return Check(name, Level.INFO, message)


def warn(name: str, message: str) -> Check:
    return Check(name, Level.WARN, message)


def fail(name: str, message: str) -> Check:
    return Check(name, Level.FAIL, message)


def problem(name: str, message: str, *, needed: bool) -> Check:
    """A failure when the recipe needs this part, a warning when it does not."""
    return Check(name, Level.FAIL if needed else Level.WARN, message)


def exit_status(checks: Iterable[Check]) -> int:
    """0 when nothing the recipe needs failed, else 1."""
    return 1 if any(c.level is Level.FAIL for c in checks) else 0
