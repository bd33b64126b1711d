"""A small repeated corpus and a tiny training config: seconds per step on two CPU workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soma_ray.config import TrainConfig

PHRASES = [
    b"the quick brown fox jumps over the lazy dog. ",
    b"pack my box with five dozen liquor jugs! ",
    b"def train(model, data):\n    return model.fit(data)\n",
]


def write_corpus(root: Path, files: int = 24) -> Path:
    """`files` small text files, each a phrase repeated 8..54 times (easy to learn, fast to score)."""
    folder = root / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        phrase = PHRASES[i % len(PHRASES)]
        (folder / f"doc{i:02d}.txt").write_bytes(f"{i}: ".encode() + phrase * (8 + 2 * i))
    return folder


def tiny_config(root: Path, **training: Any) -> TrainConfig:
    raw: dict[str, Any] = {
        "chain": {"network": "sim", "sim": {"path": str(root / "sim")}},
        "model": {"preset": "custom", "embedding_dim": 32, "pwff_hidden_dim": 64, "num_layers": 1, "num_heads": 2},
        "data": {"source": "files", "path": str(write_corpus(root)), "max_bytes": 4096},
        "heldout": {"every": 4, "max_samples": 4},
        "training": {
            "storage_path": str(root / "runs"), "num_workers": 2, "zero_stage": 2, "precision": "float32",
            "micro_batch": 2, "lr": 0.01, "warmup_steps": 2, "max_steps": 12, "log_every": 1,
            "eval_every": 4, "checkpoint_every": 4, "shuffle_buffer": 8, "max_failures": 0,
            **training,
        },
        "export": {"dir": str(root / "artifacts")},
    }
    return TrainConfig.model_validate(raw)


def write_recipe(config: TrainConfig, path: Path, **top: Any) -> Path:
    """The config as a YAML recipe (only the fields that were set, plus `kind`)."""
    import yaml

    raw = {**config.model_dump(mode="json", exclude_unset=True), "kind": config.kind, **top}
    path.write_text(yaml.safe_dump(raw))
    return path
