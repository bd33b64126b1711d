"""Joining Ray from a job, the CLI or a library call: one rule for all of them."""

from __future__ import annotations

import os


def ensure_ray(*, log_to_driver: bool = True) -> None:
    """Join RAY_ADDRESS (or a `ray start` cluster on this machine), else start a local Ray."""
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=log_to_driver)
