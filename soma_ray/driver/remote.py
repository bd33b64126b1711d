"""Calling the driver actor: its failures as themselves (e.g. `DriverRefused`), not as Ray's
wrapper. Used by everything that sends the driver requests (the training rounds, the submitter,
the cycle, the `soma-ray` driver commands)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ray
from ray.exceptions import RayTaskError


@contextmanager
def actor_errors() -> Iterator[None]:
    """A failure inside an actor surfaces as its own error (one line, e.g. DriverRefused), not as
    Ray's wrapper, whose message is the remote traceback."""
    try:
        yield
    except RayTaskError as err:
        cause = err.cause
        if isinstance(cause, Exception) and not isinstance(cause, RayTaskError):
            raise cause from None
        raise


def call(ref: Any) -> Any:
    """`ray.get` of an actor call, with `actor_errors`."""
    with actor_errors():
        return ray.get(ref)


__all__ = ["actor_errors", "call"]
