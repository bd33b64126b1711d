"""Winner and distance for one target (protocol.md §1.6)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from soma_ray.scoring.evaluate import Evaluation


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 − (a/‖a‖₂)·(b/‖b‖₂) in float32, no epsilon (a zero vector gives NaN, as on the scorer)."""
    a32 = np.asarray(a, dtype=np.float32)
    b32 = np.asarray(b, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.dot(a32 / np.linalg.norm(a32), b32 / np.linalg.norm(b32))
    return float(np.float32(1.0) - np.float32(cos))


def select(
    evaluations_per_model: Sequence[Evaluation], target_embedding: np.ndarray
) -> tuple[int, float, np.ndarray, float]:
    """(winner_index, loss, embedding, distance): the first model with the minimum loss.

    Models that could not score the sample (NaN loss) never win; if none could, ValueError.
    """
    losses = [e.loss if e.ok and not math.isnan(e.loss) else math.inf for e in evaluations_per_model]
    if not losses or min(losses) == math.inf:
        raise ValueError("no model produced a loss for this sample")
    winner = losses.index(min(losses))  # first minimum, as argmin on the scorer
    best = evaluations_per_model[winner]
    return winner, best.loss, best.embedding, cosine_distance(best.embedding, target_embedding)
