"""What a commit consumes: the artifacts manifest (manifest.json next to weights.safetensors).

`training/export.py` writes it; the driver reads it to commit. It lives with the driver, its
consumer, so that the driver never imports training (layers only point down).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Artifacts:
    """What the commit step needs (written as manifest.json next to weights.safetensors)."""

    run: str
    step: int
    architecture: dict[str, object]
    heldout_loss: float
    heldout_samples: int
    embedding: list[float]
    embedding_commitment: str  # Blake2b(BCS tensor), as `commit_model` will compute it
    weights_file: str  # relative to the manifest
    weights_size: int
    weights_blake2b: str  # base58 Blake2b-256 of the plaintext weights
    checkpoint: str
    created_at: float

    @classmethod
    def read(cls, manifest: Path) -> Artifacts:
        return cls(**json.loads(Path(manifest).read_text()))

    def weights_path(self, manifest: Path) -> Path:
        return Path(manifest).parent / self.weights_file


__all__ = ["Artifacts"]
