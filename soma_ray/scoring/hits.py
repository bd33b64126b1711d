"""Every (sample, target) pair at once: each target's winner among its own models, and hits.

Loss and embedding depend only on (data, model, seed), never on the target, so one evaluation
per (sample, distinct model) serves every open target that lists the model (protocol.md §1.10).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from soma_ray.chain.types import Target
from soma_ray.scoring.evaluate import Evaluation
from soma_ray.scoring.select import cosine_distance


@dataclass(frozen=True)
class Hit:
    """A sample whose winning model's embedding lies within a target's threshold."""

    sample_index: int
    target_id: str
    model_id: str
    loss: float
    embedding: np.ndarray = field(repr=False)
    distance: float


@dataclass(frozen=True)
class Scan:
    """Winners and distances for targets × samples (NaN where no assigned model could score)."""

    targets: list[Target]
    model_ids: list[str]
    winners: np.ndarray  # int [T, S]: index into model_ids, -1 if none
    distances: np.ndarray  # float32 [T, S]

    def hits(self, evaluations: Mapping[str, Sequence[Evaluation]]) -> list[Hit]:
        """The best hitting sample per target (smallest distance), confirmed with `cosine_distance`."""
        found: list[Hit] = []
        thresholds = np.array([t.distance_threshold for t in self.targets], dtype=np.float32)
        within = self.distances <= thresholds[:, None]  # NaN never hits here
        for t_index in np.flatnonzero(within.any(axis=1)):
            candidates = np.flatnonzero(within[t_index])
            best = int(candidates[np.argmin(self.distances[t_index, candidates])])
            target = self.targets[t_index]
            model_id = self.model_ids[self.winners[t_index, best]]
            evaluation = evaluations[model_id][best]
            distance = cosine_distance(evaluation.embedding, target.embedding)
            if np.float32(distance) <= np.float32(target.distance_threshold):
                found.append(Hit(best, target.id, model_id, evaluation.loss, evaluation.embedding, distance))
        return found

    def best_distance(self) -> float:
        finite = self.distances[np.isfinite(self.distances)]
        return float(finite.min()) if finite.size else math.nan


def scan(evaluations: Mapping[str, Sequence[Evaluation]], targets: Sequence[Target]) -> Scan:
    """Array form of `select` for every target and sample.

    `evaluations[model_id][s]` is sample s scored by that model; targets whose models are missing
    from `evaluations` (unavailable weights) only compete among the models that are present,
    but never produce a winner index for an absent model.
    """
    model_ids = sorted(evaluations)
    index = {m: i for i, m in enumerate(model_ids)}
    samples = len(next(iter(evaluations.values()))) if evaluations else 0
    losses = np.full((len(model_ids) + 1, samples), np.inf)  # last row: padding for absent models
    dim = targets[0].embedding.size if targets else 0
    unit = np.zeros((len(model_ids) + 1, samples, dim), dtype=np.float32)
    for m, evals in evaluations.items():
        for s, e in enumerate(evals):
            if e.ok and not math.isnan(e.loss):
                losses[index[m], s] = e.loss
                norm = np.linalg.norm(e.embedding)
                unit[index[m], s] = e.embedding / norm if norm > 0 else np.nan
    width = max((len(t.model_ids) for t in targets), default=0)
    pad = len(model_ids)
    assigned = np.full((len(targets), width), pad, dtype=np.int64)
    for t, target in enumerate(targets):
        for j, m in enumerate(target.model_ids):
            assigned[t, j] = index.get(m, pad)  # model order as listed: first minimum wins
    per_target = losses[assigned]  # [T, width, S]
    choice = per_target.argmin(axis=1)  # [T, S]
    chosen = np.take_along_axis(assigned, choice, axis=1) if width else np.zeros((len(targets), samples), int)
    valid = np.isfinite(np.take_along_axis(per_target, choice[:, None, :], axis=1)[:, 0, :])
    goal = np.stack([t.embedding / np.linalg.norm(t.embedding) for t in targets]).astype(np.float32) if targets else (
        np.zeros((0, dim), np.float32)
    )
    cos = np.einsum("tsd,td->ts", unit[chosen, np.arange(samples)[None, :]], goal)
    distances = np.where(valid, np.float32(1.0) - cos.astype(np.float32), np.float32(np.nan))
    winners = np.where(valid, chosen, -1)
    return Scan(list(targets), model_ids, winners, distances.astype(np.float32))


def find_hits(evaluations: Mapping[str, Sequence[Evaluation]], targets: Sequence[Target]) -> list[Hit]:
    """For each target, the best sample within its threshold (at most one hit per target)."""
    return scan(evaluations, targets).hits(evaluations)
