"""Export for commit: checkpoint → canonical float32 weights + embedding + artifacts manifest.

Works from any DeepSpeed checkpoint (ZeRO-1/2/3, bf16 or float32): DeepSpeed's own
`get_fp32_state_dict_from_zero_checkpoint` rebuilds the float32 master weights from the
optimiser partitions, offline, in one process. The embedding is what the scorer computes
(`scoring.evaluate`, seed 0) averaged over the held-out set; the held-out loss is recomputed
the same way. The manifest is the commit step's input (protocol.md §2.3 commitments are made
from these weights after encryption with a fresh key).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from soma_models.v1.torch import Model

from soma_ray.driver.artifacts import Artifacts
from soma_ray.protocol.architecture import ArchitectureSettings
from soma_ray.protocol.commitments import commitment, embedding_commitment
from soma_ray.runtime import quiet_output
from soma_ray.training.config import TrainConfig
from soma_ray.training.data import heldout_samples
from soma_ray.training.errors import ExportError
from soma_ray.training.heldout import score_heldout
from soma_ray.training.state import DEEPSPEED_TAG, TrainState
from soma_ray.training.weights import canonical_bytes, model_config

MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "weights.safetensors"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def consolidated_weights(checkpoint_dir: Path, arch: ArchitectureSettings) -> bytes:
    """Canonical safetensors bytes (float32, §2.1) from a soma-ray DeepSpeed checkpoint folder."""
    if not (checkpoint_dir / DEEPSPEED_TAG).is_dir():
        raise ExportError(f"{checkpoint_dir} holds no DeepSpeed checkpoint (no {DEEPSPEED_TAG}/ folder)")
    with quiet_output("deepspeed"):  # its import warning, prints and progress bar: to the log file
        from deepspeed.utils.zero_to_fp32 import (  # type: ignore[import-untyped]
            get_fp32_state_dict_from_zero_checkpoint,
        )

        state = get_fp32_state_dict_from_zero_checkpoint(str(checkpoint_dir), tag=DEEPSPEED_TAG)
    try:
        return canonical_bytes(state, arch)
    except RuntimeError as err:
        raise ExportError(
            f"checkpoint weights do not fit the configured architecture ({str(err).splitlines()[0][:160]})"
        ) from None


def export_checkpoint(checkpoint_dir: Path, config: TrainConfig, out_dir: Path | None = None) -> Path:
    """Write weights.safetensors and manifest.json (atomically, manifest last); return the manifest path."""
    checkpoint_dir = Path(checkpoint_dir)
    state = TrainState.read(checkpoint_dir)
    arch = config.architecture
    weights = consolidated_weights(checkpoint_dir, arch)
    model: Model = Model.load_bytes(weights, model_config(arch)).eval().requires_grad_(False)
    samples = heldout_samples(config.data, config.heldout)
    score = score_heldout(model, samples)
    embedding = np.asarray(score.embedding, dtype=np.float32)
    folder = Path(out_dir or config.export.dir) / (state.run or "run") / f"step-{state.step:08d}"
    artifacts = Artifacts(
        run=state.run, step=state.step, architecture=arch.model_dump(), heldout_loss=score.loss,
        heldout_samples=score.samples, embedding=[float(x) for x in embedding],
        embedding_commitment=embedding_commitment(embedding), weights_file=WEIGHTS_FILE,
        weights_size=len(weights), weights_blake2b=commitment(weights), checkpoint=str(checkpoint_dir),
        created_at=time.time(),
    )
    _atomic_write(folder / WEIGHTS_FILE, weights)
    _atomic_write(folder / MANIFEST_FILE, json.dumps(asdict(artifacts), indent=1).encode())
    return folder / MANIFEST_FILE


__all__ = ["MANIFEST_FILE", "WEIGHTS_FILE", "consolidated_weights", "export_checkpoint"]
