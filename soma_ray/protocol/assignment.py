"""Which models a target is assigned: stake-weighted KNN (protocol.md §3.2)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def cosine_distances(target_embedding: np.ndarray, model_embeddings: np.ndarray) -> np.ndarray:
    """`1 − cos` from one embedding to each row, in f32 with norms clamped at 1e-8, as the
    chain's selection computes it (§3.2)."""
    t = np.asarray(target_embedding, dtype=np.float32)
    m = np.atleast_2d(np.asarray(model_embeddings, dtype=np.float32))
    t_norm = np.maximum(np.linalg.norm(t), np.float32(1e-8))
    m_norm = np.maximum(np.linalg.norm(m, axis=1), np.float32(1e-8))
    cos = (m @ t) / (t_norm * m_norm)
    dist: np.ndarray = np.float32(1.0) - cos.astype(np.float32)
    return dist


def select_models_weighted_knn(
    target_embedding: np.ndarray,
    model_ids: Sequence[str],
    model_embeddings: np.ndarray,
    stakes: Sequence[int],
    k: int,
) -> list[str]:
    """Rank active models by cosine distance divided by their sqrt-stake share; take k.

    Mirrors `select_models_weighted_knn` in f32: norms clamped at 1e-8, voting power
    `sqrt(stake_i) / Σ sqrt(stake_j)`, score `dist / (vp + 1e-10)`, ascending, stable order
    on ties (registry order = id bytes).
    """
    if not model_ids:
        return []
    dist = cosine_distances(target_embedding, np.asarray(model_embeddings).reshape(len(model_ids), -1))
    roots = np.sqrt(np.asarray(stakes, dtype=np.float64))
    total = roots.sum()
    vp = (roots / total if total > 0 else np.zeros_like(roots)).astype(np.float32)
    score = dist / (vp + np.float32(1e-10))
    order = np.argsort(score, kind="stable")
    return [model_ids[i] for i in order[: min(k, len(model_ids))]]
