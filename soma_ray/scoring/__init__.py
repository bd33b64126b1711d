"""Exact, batched SOMA scoring (protocol.md §1): evaluate, select, find hits, the model store.

Import the functions from their modules (`soma_ray.scoring.evaluate.evaluate`,
`soma_ray.scoring.select.select`): the package loads nothing itself, so that a recipe's
`scoring:` section (`scoring.config`) imports without torch. The classes load lazily from here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soma_ray.scoring.evaluate import Evaluation
    from soma_ray.scoring.hits import Hit, Scan, find_hits, scan
    from soma_ray.scoring.select import cosine_distance
    from soma_ray.scoring.store import ModelStore, ModelUnavailable, StoreStats

_LAZY = {"Evaluation": "evaluate", "cosine_distance": "select",
         "Hit": "hits", "Scan": "hits", "find_hits": "hits", "scan": "hits",
         "ModelStore": "store", "ModelUnavailable": "store", "StoreStats": "store"}
__all__ = ["Evaluation", "Hit", "ModelStore", "ModelUnavailable", "Scan", "StoreStats", "cosine_distance",
           "find_hits", "scan"]


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
