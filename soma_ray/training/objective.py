"""The training objective on the scoring contract (protocol.md §1.5, §1.9).

The network scores a model with global, clamped position ids, cross entropy divided by all
b·1024 positions (PAD targets count in the denominator, not the numerator) and 0.02·SIGReg.
soma-models' `compute_loss` differs on all three (per-row 0..1023 positions, CE over non-PAD
targets only, SIGReg noise from the global RNG): a model trained that way is judged on inputs
it never saw. Here training and scoring share `scoring.forward.encode` (global positions,
float32 RoPE) and the scorer's normalisation; only the SIGReg projections may be random.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from soma_models.v1.torch import Model
from torch import nn

from soma_ray.protocol.constants import PAD_TOKEN
from soma_ray.scoring.forward import encode
from soma_ray.scoring.sigreg import COEFFICIENT, POINTS, SLICES, T_MAX


class ScoringObjective(nn.Module):
    """Wraps a V1 `Model`; `forward` returns (loss, cross_entropy, sigreg) for one micro-batch.

    It is the module DeepSpeed wraps, so its state dict is the model's under the `model.` prefix.
    """

    t: torch.Tensor
    phi: torch.Tensor
    weights: torch.Tensor

    def __init__(self, model: Model, *, checkpoint_layers: bool = False) -> None:
        super().__init__()
        self.model = model
        self.checkpoint_layers = checkpoint_layers
        dt = T_MAX / (POINTS - 1)
        t = torch.arange(POINTS, dtype=torch.float32) * dt
        phi = torch.exp(-0.5 * t * t)
        weights = torch.full((POINTS,), 2 * dt)
        weights[0] = weights[-1] = dt
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("phi", phi, persistent=False)
        self.register_buffer("weights", weights * phi, persistent=False)

    def sigreg(self, h: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
        """Mean over tokens of the per-token SIGReg statistic, in float32 (§1.5)."""
        x = h.float() @ projection  # [b, S, 256]
        xt = x.unsqueeze(-1) * self.t  # [b, S, 256, 17]
        err = (xt.cos().mean(-2) - self.phi) ** 2 + xt.sin().mean(-2) ** 2
        stat: torch.Tensor = ((err * self.weights).sum(-1) * SLICES).mean()
        return stat

    def forward(
        self, tokens: torch.Tensor, positions: torch.Tensor, targets: torch.Tensor, projection: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = encode(self.model, tokens, positions, checkpoint_layers=self.checkpoint_layers)
        logits = self.model.predict(h).float()
        nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
        # burn's CrossEntropyLoss: PAD targets zeroed, mean over all b·1024 positions.
        ce = nll.masked_fill(targets.flatten() == PAD_TOKEN, 0.0).mean()
        sig = self.sigreg(h, projection)
        return ce + COEFFICIENT * sig, ce.detach(), sig.detach()


def projection(noise: torch.Tensor) -> torch.Tensor:
    """Column-normalised [D, 256] SIGReg projection from raw Gaussian noise (§1.5, no eps)."""
    normalised: torch.Tensor = noise / noise.norm(dim=0, keepdim=True)
    return normalised


def random_projection(dim: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Drawn on the device itself (no host → device copy every micro-step)."""
    noise = torch.randn(dim, SLICES, generator=generator, dtype=torch.float32, device=device)
    return projection(noise)
