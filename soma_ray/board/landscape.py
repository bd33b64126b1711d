"""Where the models sit: pairwise cosine distances, nearest neighbours, density and clusters, and
for each open target its models with their stake, commission and distance from the target.

Distances are the chain's own (`protocol.assignment.cosine_distances`, §3.2). A neighbour is a
model within `radius` (0.3 by default: an analyst's choice, not a protocol value); clusters are
the connected groups of that neighbour relation (single linkage).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from soma_ray.board.snapshot import ModelRow, Snapshot
from soma_ray.protocol.assignment import cosine_distances

DENSITY_RADIUS = 0.3


def embedding_matrix(models: Sequence[ModelRow]) -> np.ndarray:
    if not models:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([m.vector for m in models])


def pairwise_distances(models: Sequence[ModelRow]) -> np.ndarray:
    """Symmetric N×N cosine distances (the diagonal is each model to itself, ~0)."""
    matrix = embedding_matrix(models)
    return np.stack([cosine_distances(row, matrix) for row in matrix]) if len(models) else matrix


@dataclass(frozen=True)
class Neighbourhood:
    model_id: str
    nearest: str | None  # None when it is the only model
    distance: float  # to the nearest (inf when alone)
    density: int  # other models within the radius


def neighbourhoods(models: Sequence[ModelRow], radius: float = DENSITY_RADIUS) -> list[Neighbourhood]:
    dist = pairwise_distances(models).astype(np.float64)
    if len(models):
        np.fill_diagonal(dist, np.inf)
    found = []
    for i, model in enumerate(models):
        j = int(np.argmin(dist[i])) if len(models) > 1 else -1
        found.append(Neighbourhood(
            model_id=model.model_id,
            nearest=models[j].model_id if j >= 0 else None,
            distance=float(dist[i, j]) if j >= 0 else float("inf"),
            density=int(np.sum(dist[i] < radius)),
        ))
    return found


def clusters(models: Sequence[ModelRow], radius: float = DENSITY_RADIUS) -> list[tuple[str, ...]]:
    """Groups of models linked by chains of neighbours, largest first (singletons included)."""
    close = pairwise_distances(models) < radius
    parent = list(range(len(models)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(close)):
        parent[root(int(i))] = root(int(j))
    groups: dict[int, list[str]] = {}
    for i, model in enumerate(models):
        groups.setdefault(root(i), []).append(model.model_id)
    return sorted((tuple(sorted(g)) for g in groups.values()), key=lambda g: (-len(g), g))


@dataclass(frozen=True)
class TargetModel:
    model_id: str
    stake: int | None  # None: the model is no longer active
    commission_rate: int | None
    distance: float  # from the target


@dataclass(frozen=True)
class OpenTarget:
    target_id: str
    reward_pool: int
    distance_threshold: float
    models: tuple[TargetModel, ...]  # in the target's order (best KNN score first)


def open_targets(snapshot: Snapshot) -> list[OpenTarget]:
    by_id = {m.model_id: m for m in snapshot.models}
    result = []
    for target in snapshot.open_targets():
        listed = []
        for model_id in target.model_ids:
            model = by_id.get(model_id)
            distance = float(cosine_distances(target.vector, model.vector[None, :])[0]) if model else float("nan")
            listed.append(TargetModel(
                model_id=model_id,
                stake=model.stake if model else None,
                commission_rate=model.commission_rate if model else None,
                distance=distance,
            ))
        result.append(OpenTarget(target.target_id, target.reward_pool, target.distance_threshold, tuple(listed)))
    return result


@dataclass(frozen=True)
class Landscape:
    epoch: int
    neighbourhoods: tuple[Neighbourhood, ...]
    clusters: tuple[tuple[str, ...], ...]
    targets: tuple[OpenTarget, ...]


def landscape(snapshot: Snapshot, radius: float = DENSITY_RADIUS) -> Landscape:
    models = snapshot.models
    return Landscape(
        epoch=snapshot.epoch,
        neighbourhoods=tuple(neighbourhoods(models, radius)),
        clusters=tuple(clusters(models, radius)),
        targets=tuple(open_targets(snapshot)),
    )
