"""Exact, batched SOMA scoring (protocol.md §1): evaluate, select, find hits, the model store."""

from soma_ray.scoring.evaluate import Evaluation, evaluate
from soma_ray.scoring.hits import Hit, Scan, find_hits, scan
from soma_ray.scoring.select import cosine_distance, select
from soma_ray.scoring.store import ModelStore, ModelUnavailable, StoreStats

__all__ = [
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
