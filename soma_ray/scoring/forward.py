"""The V1 forward pass for scoring: soma-models' weights, a faster attention, f32 positions.

`soma_models`' own attention materialises a [B, H, S, S] score matrix and a mask on every call;
here the same math runs through `scaled_dot_product_attention` (causal), which is what makes
large packed batches affordable. RoPE angles are always computed in float32 from the global
positions (up to 1,048,575): in bf16 they would lose precision (protocol.md §12).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from soma_models.v1.torch import Model
from torch.utils.checkpoint import checkpoint


def _layers(model: Model) -> list[Any]:
    """soma-models' layer modules (untyped: their attributes are read dynamically)."""
    return list(model.encoder.layers)


def rope_angles(model: Model, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of θ = pos / 10000^(2i/head_dim), [N, S, 1, head_dim/2], float32."""
    attention: Any = _layers(model)[0].attention
    head_dim = attention.head_dim
    fraction = 2 * torch.arange(0, head_dim // 2, dtype=torch.float32, device=positions.device) / head_dim
    timescale = attention.max_wavelength**fraction
    angles = (positions.to(torch.float32).unsqueeze(-1) / timescale).unsqueeze(-2) / attention.scale_factor
    return torch.cos(angles), torch.sin(angles)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    first, second = x.float().chunk(2, dim=-1)
    out = torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1)
    return out.to(x.dtype)


def _layer(layer: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """One pre-norm transformer layer: x + attention(norm_1(x)), then + pwff(norm_2(x))."""
    n, s, d = x.shape
    attn = layer.attention
    h = attn.num_heads
    r = layer.norm_1(x)
    q = _rotate(attn.query(r).view(n, s, h, -1), cos, sin).transpose(1, 2)
    k = _rotate(attn.key(r).view(n, s, h, -1), cos, sin).transpose(1, 2)
    v = attn.value(r).view(n, s, h, -1).transpose(1, 2)
    o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    x = x + attn.output(o.transpose(1, 2).reshape(n, s, d))
    out: torch.Tensor = x + layer.pwff(layer.norm_2(x))
    return out


def encode(
    model: Model, tokens: torch.Tensor, positions: torch.Tensor, *, checkpoint_layers: bool = False
) -> torch.Tensor:
    """`model.encode(tokens, positions)` with fused causal attention; returns [N, S, D].

    `checkpoint_layers` (training only) keeps just each layer's input for the backward pass and
    recomputes the rest: about a third more compute for a fraction of the activation memory.
    """
    cos, sin = rope_angles(model, positions)
    x = model.embedding(tokens)
    for layer in _layers(model):
        if checkpoint_layers and torch.is_grad_enabled():
            x = checkpoint(_layer, layer, x, cos, sin, use_reentrant=False)
        else:
            x = _layer(layer, x, cos, sin)
    out: torch.Tensor = model.final_norm(x)
    return out
