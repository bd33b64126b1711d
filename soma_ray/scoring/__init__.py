"""Exact, batched SOMA scoring (protocol.md §1): evaluate, select, find hits, the model store.

The hits and store names load lazily, so that the scorer itself imports without the chain,
storage and soma-sdk layers they need (bench/device.py runs on machines without those).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from soma_ray.scoring.evaluate import Evaluation, evaluate
from soma_ray.scoring.select import cosine_distance, select

if TYPE_CHECKING:
    from soma_ray.scoring.hits import Hit, Scan, find_hits, scan
    from soma_ray.scoring.store import ModelStore, ModelUnavailable, StoreStats

_LAZY = {"Hit": "hits", "Scan": "hits", "find_hits": "hits", "scan": "hits",
         "ModelStore": "store", "ModelUnavailable": "store", "StoreStats": "store"}
__all__ = [  # a literal list: type checkers read explicit exports from it
    "Evaluation",
    "Hit",
    "ModelStore",
    "ModelUnavailable",
    "Scan",
    "StoreStats",
    "cosine_distance",
    "evaluate",
    "find_hits",
    "scan",
    "select",
]


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
