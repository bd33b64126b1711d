"""DeepSpeed setup: the config dict, AdamW, the warmup + cosine schedule, `deepspeed.initialize`.

The optimiser is torch's AdamW handed to DeepSpeed (`zero_allow_untested_optimizer`): on CUDA
it runs fused, and nothing needs DeepSpeed's compiled Adam kernels, so the same code runs on
CPU (gloo) in CI and on GPUs (NCCL).
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from soma_ray.training.config import TrainingSection

log = logging.getLogger(__name__)

# On CPU, DeepSpeed compiles its shared-memory collective op at start-up under torch's extension
# build lock. The lock names no owner, so one left by a killed process makes every later start on
# this machine wait forever. A build takes about a minute here; a lock this old is stale.
SHM_OP = "deepspeed_shm_comm"
STALE_BUILD_LOCK_S = 600.0


def deepspeed_config(training: TrainingSection) -> dict[str, Any]:
    zero: dict[str, Any] = {"stage": training.zero_stage}
    if training.zero_stage == 3:
        # Gather the full consolidated weights only at export, never on save.
        zero["stage3_gather_16bit_weights_on_model_save"] = False
    return {
        "train_micro_batch_size_per_gpu": training.micro_batch,
        "gradient_accumulation_steps": training.grad_accum,
        "gradient_clipping": training.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": training.precision == "bf16"},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,  # soma-ray logs progress itself
        "wall_clock_breakdown": False,
    }


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_ratio: float) -> float:
    """Linear warmup from ~0 to 1, then cosine decay to `min_ratio` at `max_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def optimizer_and_schedule(
    model: torch.nn.Module, training: TrainingSection, device: torch.device
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with weight decay on matrices only (not on biases, norms or the embedding table)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        (decay if param.ndim >= 2 and "embedding" not in name else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": training.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(
        groups, lr=training.lr, betas=training.betas, fused=device.type == "cuda"
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(step, training.warmup_steps, training.max_steps, training.min_lr_ratio),
    )
    return optimizer, schedule


def clear_stale_build_locks(name: str = SHM_OP, *, older_than_s: float = STALE_BUILD_LOCK_S) -> list[Path]:
    """Remove torch extension build locks of `name` older than `older_than_s` (left by a killed
    process: torch's own wait on them has no end); returns what was removed."""
    from torch.utils.cpp_extension import get_default_build_root

    explicit = os.environ.get("TORCH_EXTENSIONS_DIR")
    root = Path(explicit) if explicit else Path(get_default_build_root())
    locks = [root / name / "lock", *root.glob(f"*/{name}/lock")]
    removed = []
    for lock in locks:
        try:
            age = time.time() - lock.stat().st_mtime
            if age < older_than_s:
                continue
            lock.unlink()
        except FileNotFoundError:
            continue
        log.warning("removed a stale build lock %s (%.0f min old, left by a killed process); DeepSpeed would "
                    "have waited on it forever", lock, age / 60)
        removed.append(lock)
    return removed


def initialize(model: torch.nn.Module, training: TrainingSection, device: torch.device) -> Any:
    """The DeepSpeed engine around `model` (the process group is Ray Train's)."""
    import deepspeed  # type: ignore[import-untyped]

    if device.type == "cpu":
        clear_stale_build_locks()

    optimizer, schedule = optimizer_and_schedule(model, training, device)
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        optimizer=optimizer,
        lr_scheduler=schedule,
        config=deepspeed_config(training),
        dist_init_required=False,
    )
    return engine
