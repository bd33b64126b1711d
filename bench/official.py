"""What the official scoring service does for every request (protocol.md §1.2), for the benchmarks.

It keeps nothing between requests: each one re-reads the encrypted weights, verifies their size
and Blake2b-256 against the manifest, decrypts them with soma-sdk, builds a fresh model and moves
it to the device. Needs torch, soma-models and soma-sdk only (no Ray), so that bench/device.py
can use it on a bare GPU machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from soma_models.v1.torch import Model, ModelConfig
from soma_sdk import SomaClient

from soma_ray.protocol.commitments import commitment


@dataclass(frozen=True)
class EncryptedWeights:
    """One model's encrypted weights on disk and what its manifest says of them."""

    path: Path
    size: int
    checksum: str
    key: str


def write_encrypted(plain: bytes, path: Path) -> EncryptedWeights:
    """Encrypt canonical safetensors bytes with a fresh key, as a model owner does, and write them."""
    encrypted, key = SomaClient.encrypt_weights(plain)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encrypted)
    return EncryptedWeights(path, len(encrypted), commitment(encrypted), key)


def load_like_official(
    weights: EncryptedWeights, config: ModelConfig, device: torch.device, seconds: dict[str, float] | None = None
) -> Model:
    """Re-read, verify, decrypt, build, move to `device`; adds each stage's time to `seconds`."""
    clock = {"t": time.perf_counter()}

    def lap(stage: str) -> None:
        now = time.perf_counter()
        if seconds is not None:
            seconds[stage] = seconds.get(stage, 0.0) + now - clock["t"]
        clock["t"] = now

    encrypted = weights.path.read_bytes()
    lap("read")
    if len(encrypted) != weights.size or commitment(encrypted) != weights.checksum:
        raise RuntimeError(f"{weights.path}: size or checksum does not match the manifest")
    lap("verify")
    plain = SomaClient.decrypt_weights(encrypted, weights.key)
    del encrypted
    lap("decrypt")
    model: Model = Model.load_bytes(plain, config)
    del plain
    lap("build")
    model = model.eval().to(device=device, dtype=torch.float32)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    lap("to_device")
    return model
