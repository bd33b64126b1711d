"""Held-out loss with the exact scorer: the number the network judges a model by.

Each rank scores its share of the held-out samples with `scoring.evaluate` (seed 0, float32,
global positions, the official batching); the shares are gathered, so every rank ends with
the same mean loss and mean embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from soma_models.v1.torch import Model

from soma_ray.scoring.evaluate import evaluate


@dataclass(frozen=True)
class HeldoutScore:
    loss: float  # mean over held-out samples of the scorer's per-sample loss
    embedding: np.ndarray = field(repr=False)  # float32 [D]: mean of the per-sample embeddings
    samples: int


def _score(model: Model, samples: Sequence[bytes], indices: Sequence[int]) -> list[tuple[int, float, np.ndarray]]:
    results = evaluate(model, [samples[i] for i in indices], seed=0)
    return [(i, r.loss, r.embedding) for i, r in zip(indices, results, strict=True) if r.ok]


def summarize(scored: Sequence[tuple[int, float, np.ndarray]]) -> HeldoutScore:
    if not scored:
        raise ValueError("no held-out sample could be scored")
    ordered = sorted(scored, key=lambda item: item[0])
    losses = np.array([loss for _, loss, _ in ordered], dtype=np.float64)
    embeddings = np.stack([emb for _, _, emb in ordered]).astype(np.float64)
    return HeldoutScore(float(losses.mean()), embeddings.mean(axis=0).astype(np.float32), len(ordered))


def score_heldout(model: Model, samples: Sequence[bytes]) -> HeldoutScore:
    """One process scores everything (export, tests)."""
    return summarize(_score(model, samples, range(len(samples))))


def score_heldout_distributed(model: Model, samples: Sequence[bytes], rank: int, world_size: int) -> HeldoutScore:
    """Collective: each rank scores samples rank, rank + world, …; all ranks get the summary."""
    mine = _score(model, samples, range(rank, len(samples), world_size))
    if world_size == 1 or not dist.is_initialized():
        return summarize(mine)
    gathered: list[list[tuple[int, float, np.ndarray]] | None] = [None] * world_size
    dist.all_gather_object(gathered, mine)
    return summarize([item for part in gathered if part for item in part])


def eval_model(template: Model, state: dict[str, torch.Tensor], device: torch.device) -> Model:
    """Load consolidated float32 weights into a reusable eval copy of the model."""
    template.load_state_dict(state)
    return template.to(device=device, dtype=torch.float32).eval().requires_grad_(False)
