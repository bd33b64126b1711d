"""`evaluate`: the official `ModelRunner::eval` result for many samples at once (§1.3–§1.6, §1.10).

Chunks of all samples are packed into shared forward batches; per-sequence partial sums
(cross-entropy, embedding, SIGReg) are regrouped afterwards into each sample's 16-chunk
batches and averaged the way the official running mean does.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from soma_models.v1.torch import Model

from soma_ray.protocol.constants import MAX_SEQ_LEN, PAD_TOKEN
from soma_ray.scoring.chunks import Chunks, chunk_samples, rejection
from soma_ray.scoring.forward import encode
from soma_ray.scoring.sigreg import COEFFICIENT, NoiseBank, sigreg_sums

Precision = Literal["float32", "bf16"]


@dataclass(frozen=True)
class Evaluation:
    """One sample scored by one model: what the official scorer returns for it."""

    loss: float
    embedding: np.ndarray = field(repr=False)  # float32 [embedding_dim]
    error: str | None = None  # why the sample could not be scored (then loss is NaN)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _RowSums:
    ce: np.ndarray  # [rows] Σ of token NLL over non-PAD targets
    embedding: np.ndarray  # [rows, D] mean of h over all 1024 positions
    sigreg: np.ndarray  # [rows] Σ over tokens of the SIGReg statistic


def _device_of(model: Model) -> torch.device:
    return next(model.parameters()).device


def _autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager[object]:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _row_batches(rows: int, size: int) -> Iterator[slice]:
    for start in range(0, rows, size):
        yield slice(start, min(start + size, rows))


@torch.no_grad()
def _row_sums(
    model: Model, chunks: Chunks, noise: NoiseBank, rows_per_forward: int, precision: Precision
) -> _RowSums:
    device = _device_of(model)
    rows = len(chunks.sample)
    dim = model.config.embedding_dim
    ce = np.empty(rows, dtype=np.float64)
    emb = np.empty((rows, dim), dtype=np.float64)
    sig = np.empty(rows, dtype=np.float64)
    for part in _row_batches(rows, rows_per_forward):
        tokens = torch.from_numpy(chunks.tokens[part]).to(device)
        positions = torch.from_numpy(chunks.positions[part]).to(device)
        targets = torch.from_numpy(chunks.targets[part]).to(device)
        with _autocast(device, precision):
            h = encode(model, tokens, positions)
            logits = model.predict(h)
        h, logits = h.float(), logits.float()
        nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view_as(targets)
        ce[part] = nll.masked_fill(targets == PAD_TOKEN, 0.0).sum(1).double().cpu().numpy()
        emb[part] = h.mean(1).double().cpu().numpy()
        projections = noise.stack(chunks.batch[part].tolist())
        sig[part] = sigreg_sums(h, projections).double().cpu().numpy()
    return _RowSums(ce, emb, sig)


def _aggregate(chunks: Chunks, sums: _RowSums) -> dict[int, tuple[float, np.ndarray]]:
    """Per sample: unweighted mean over its 16-chunk batches of (CE + 0.02·SIGReg) and embedding.

    CE and SIGReg of a batch are divided by all b·1024 positions (burn 0.19.1's rule, §1.5).
    """
    key = np.stack([chunks.sample, chunks.batch], axis=1)
    starts = np.flatnonzero(np.r_[True, np.any(key[1:] != key[:-1], axis=1)])
    counts = np.diff(np.r_[starts, len(key)])
    positions = counts * MAX_SEQ_LEN
    batch_loss = (np.add.reduceat(sums.ce, starts) + COEFFICIENT * np.add.reduceat(sums.sigreg, starts)) / positions
    batch_emb = np.add.reduceat(sums.embedding, starts, axis=0) / counts[:, None]
    owner = chunks.sample[starts]
    results: dict[int, tuple[float, np.ndarray]] = {}
    for sample in np.unique(owner):
        mine = owner == sample
        results[int(sample)] = (
            float(np.float32(batch_loss[mine].mean())),
            batch_emb[mine].mean(axis=0).astype(np.float32),
        )
    return results


def evaluate(
    model: Model,
    samples: Sequence[bytes],
    seed: int = 0,
    *,
    rows_per_forward: int = 16,
    precision: Precision = "float32",
    noise: NoiseBank | None = None,
) -> list[Evaluation]:
    """Score every sample with `model` (eval mode, float32 weights): one `Evaluation` each.

    Use seed 0 — the validators' audit hard-codes it (§1.1). `precision="bf16"` is a fast,
    inexact pre-filter only; anything submitted must come from a float32 evaluation.
    """
    dim = model.config.embedding_dim
    device = _device_of(model)
    noise = noise or NoiseBank(dim, device, seed)
    if noise.seed != seed or noise.dim != dim:
        raise ValueError(f"noise bank is for seed {noise.seed}, dim {noise.dim}; need seed {seed}, dim {dim}")
    reasons = {i: reason for i, data in enumerate(samples) if (reason := rejection(data)) is not None}
    accepted = [(i, bytes(data)) for i, data in enumerate(samples) if i not in reasons]
    scored: dict[int, tuple[float, np.ndarray]] = {}
    if accepted:
        chunks = chunk_samples(accepted)
        scored = _aggregate(chunks, _row_sums(model, chunks, noise, rows_per_forward, precision))
    nan = np.full(dim, np.nan, dtype=np.float32)
    return [
        Evaluation(*scored[i]) if i in scored else Evaluation(math.nan, nan, reasons[i])
        for i in range(len(samples))
    ]
