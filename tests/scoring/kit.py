"""A one-sample-at-a-time implementation of `ModelRunner::eval`, written straight from §1.5.

It uses soma-models' own `encode` and `SIGReg.compute` (not the scorer's fast paths), so the
scorer is checked against an independent route through the same weights.
"""

from __future__ import annotations

import arrgen
import numpy as np
import torch
import torch.nn.functional as F
from soma_models.v1.configs import SIGRegConfig
from soma_models.v1.tokenizer import tokenize
from soma_models.v1.torch import Model, SIGReg

PAD = 256


@torch.no_grad()
def reference_eval(model: Model, data: bytes, seed: int = 0) -> tuple[float, np.ndarray]:
    sequences = tokenize(data)
    assert sequences, "the scorer rejects empty data"
    device = next(model.parameters()).device
    sig_reg = SIGReg(SIGRegConfig()).to(device)
    dim = model.config.embedding_dim
    loss_mean, emb_mean, count = 0.0, torch.zeros(dim, device=device), 0
    for idx, start in enumerate(range(0, len(sequences), 16)):  # batch arrival order = chunk order
        batch = sequences[start : start + 16]
        tokens = torch.tensor([s.token_ids for s in batch], device=device)
        positions = torch.tensor([s.pos_ids for s in batch], device=device)
        targets = torch.tensor([s.targets for s in batch], device=device)
        h = model.encode(tokens, positions)
        logits = model.predict(h)
        embedding = h.mean(dim=1).mean(dim=0)
        log_probs = F.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        ce = -(log_probs * (targets != PAD)).sum() / targets.numel()  # burn: ÷ all b·1024
        noise = torch.from_numpy(arrgen.normal_array(seed + idx, [dim, 256], 0.0, 1.0)).to(device)
        loss = ce + sig_reg.compute(h, noise)  # compute() already applies the 0.02 coefficient
        count += 1  # RunningMean: m ← m + (x − m)/count
        loss_mean += (loss.item() - loss_mean) / count
        emb_mean += (embedding - emb_mean) / count
    return loss_mean, emb_mean.cpu().numpy().astype(np.float32)
