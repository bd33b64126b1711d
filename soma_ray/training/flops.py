"""Model FLOPs per token and MFU for the V1 architecture (nanoGPT's accounting).

Training costs 6·N FLOPs per token for the weight matmuls (forward 2N, backward 4N) plus
the causal attention scores and values: 12·L·D·S per token (6 × the 2·L·D·S of a forward
pass over S positions). MFU divides achieved model FLOPs by the hardware's dense peak.
"""

from __future__ import annotations

from soma_ray.protocol.constants import MAX_SEQ_LEN, VOCAB_SIZE

# Dense (no sparsity) peak TFLOP/s per device for the precision training runs in.
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.0, "float32": 494.5},  # TF32 tensor cores for float32
    "H100": {"bf16": 989.0, "float32": 494.5},  # SXM; PCIe is ~756 / 378
    "A100": {"bf16": 312.0, "float32": 156.0},
    "L40S": {"bf16": 362.0, "float32": 183.0},
    "A10G": {"bf16": 125.0, "float32": 62.5},
    "L4": {"bf16": 121.0, "float32": 60.0},
}


def parameter_count(embedding_dim: int, pwff_hidden_dim: int, num_layers: int, vocab_size: int = VOCAB_SIZE) -> int:
    """Parameters of a V1 model (389 tensors at full size: 1,209,684,232)."""
    d, f = embedding_dim, pwff_hidden_dim
    per_layer = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 4 * d
    return vocab_size * d + num_layers * per_layer + 2 * d + d * vocab_size + vocab_size


def forward_flops_per_token(
    embedding_dim: int, pwff_hidden_dim: int, num_layers: int, seq_len: int = MAX_SEQ_LEN
) -> float:
    """One forward pass (scoring): 2·N (embedding lookups excluded: they are not matmuls) plus
    4·L·D·S for QKᵀ and A·V over the full S×S square. V1: 2.62 GFLOP per token."""
    n = parameter_count(embedding_dim, pwff_hidden_dim, num_layers) - VOCAB_SIZE * embedding_dim
    return 2.0 * n + 4.0 * num_layers * embedding_dim * seq_len


def training_flops_per_token(
    embedding_dim: int, pwff_hidden_dim: int, num_layers: int, seq_len: int = MAX_SEQ_LEN
) -> float:
    """Forward plus backward (twice the forward): 6·N + 12·L·D·S."""
    return 3.0 * forward_flops_per_token(embedding_dim, pwff_hidden_dim, num_layers, seq_len)


def peak_tflops(device_name: str, precision: str) -> float | None:
    """The table's peak for a device name such as 'NVIDIA H100 80GB HBM3', or None if unknown."""
    upper = device_name.upper()
    for key in sorted(PEAK_TFLOPS, key=len, reverse=True):  # 'L40S' before 'L4'
        if key in upper:
            return PEAK_TFLOPS[key]["bf16" if precision == "bf16" else "float32"]
    return None


def mfu(tokens_per_second: float, flops_per_token: float, devices: int, peak: float | None) -> float | None:
    """Model FLOPs utilisation in [0, 1], or None without a known peak (e.g. on CPU)."""
    if peak is None or devices < 1:
        return None
    return tokens_per_second * flops_per_token / (devices * peak * 1e12)
