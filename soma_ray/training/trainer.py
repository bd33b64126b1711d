"""`run_training(config)`: a Ray Train `TorchTrainer` around the DeepSpeed loop, then export.

The run name is the resume key (Ray Train V2 restores the latest checkpoint of a run with the
same name and storage path); a config without a name gets a fresh one, printed so that it can
be passed back with `--set training.name=...`.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import ray
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from soma_ray.chain.config import WalletConfig
from soma_ray.data.sources import check_source
from soma_ray.display import session
from soma_ray.paths import absolute_location
from soma_ray.runtime import configure_logging, ensure_ray
from soma_ray.storage.config import StorageConfig
from soma_ray.training.config import TrainConfig
from soma_ray.training.export import export_checkpoint
from soma_ray.training.loop import train_loop_per_worker
from soma_ray.training.progress import TrainingRelay
from soma_ray.training.weights import warm_start_bytes

log = logging.getLogger("soma_ray.train")


@dataclass(frozen=True)
class TrainingOutcome:
    run: str
    path: str  # the run's folder in storage
    metrics: dict[str, Any]  # the last report
    best_checkpoint: str | None
    best_heldout_loss: float
    manifest: Path | None  # the exported artifacts, if exported
    history: list[dict[str, Any]]  # the reports of the last attempt (after any resume)


def fresh_run_name(prefix: str = "train") -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def storage_path(raw: str) -> str:
    """Ray wants absolute local paths; URIs (s3://, gs://) pass through."""
    return absolute_location(raw, Path.cwd())


def scaling_config(config: TrainConfig) -> ScalingConfig:
    t = config.training
    resources: dict[str, float] = {"CPU": t.cpus_per_worker, **t.resources_per_worker}
    if t.use_gpu:
        resources["GPU"] = t.gpus_per_worker
    return ScalingConfig(num_workers=t.num_workers, use_gpu=t.use_gpu, resources_per_worker=resources)


def portable(config: TrainConfig) -> TrainConfig:
    """The config for processes that run elsewhere: no secrets (wallet key, storage
    credentials), and local paths made absolute — Ray Train workers and Tune trials start in
    folders of their own, not in the job's working directory."""
    absolute = config.with_absolute_paths(Path.cwd())
    return absolute.model_copy(update={"wallet": WalletConfig(), "storage": StorageConfig()})


def build_trainer(
    config: TrainConfig, run: str, *, warm_start: Any = None, callbacks: list[Any] | None = None
) -> TorchTrainer:
    t = config.training
    return TorchTrainer(
        cast(Callable[[dict[str, Any]], None], train_loop_per_worker),
        train_loop_config={"config": portable(config), "run": run, "warm_start": warm_start},
        scaling_config=scaling_config(config),
        torch_config=TorchConfig(backend="nccl" if t.use_gpu else "gloo"),
        run_config=RunConfig(
            name=run,
            storage_path=storage_path(t.storage_path),
            checkpoint_config=CheckpointConfig(
                num_to_keep=t.keep_checkpoints,
                checkpoint_score_attribute="heldout_loss",
                checkpoint_score_order="min",
            ),
            failure_config=FailureConfig(max_failures=t.max_failures),
            callbacks=callbacks or [],
        ),
    )


def best_checkpoint(result: Any) -> tuple[Checkpoint | None, float]:
    """The kept checkpoint with the lowest held-out exact-scorer loss (not the latest)."""
    scored = [(c, float(m["heldout_loss"])) for c, m in (result.best_checkpoints or []) if "heldout_loss" in m]
    if not scored:
        return None, math.inf
    return min(scored, key=lambda item: item[1])


def check_inputs(config: TrainConfig) -> None:
    """What can be checked before Ray starts: the training and held-out sources name files (`DataError`)."""
    check_source(config.data)
    if config.heldout.data is not None:
        check_source(config.heldout.data)


def run_training(config: TrainConfig, *, callbacks: list[Any] | None = None, export: bool | None = None,
                 progress: bool = True) -> TrainingOutcome:
    """Train (or resume) the configured run; export its best checkpoint for commit. With
    `progress`, the figures go to the job's display (a new one if none is open)."""
    configure_logging()
    check_inputs(config)
    ensure_ray()
    run = config.training.name or fresh_run_name()
    log.info("training run %s (resume it with --set training.name=%s)", run, run)
    warm = warm_start_bytes(config)
    warm_ref = ray.put(warm) if warm is not None else None
    with session() if progress else nullcontext() as display:
        relay = None
        if display is not None:
            display.stage(f"training run {run} (resume it with --set training.name={run})")
            relay = TrainingRelay(display, config.training.max_steps)
        try:
            result = build_trainer(
                config, run, warm_start=warm_ref, callbacks=[*(callbacks or []), *([relay.callback] if relay else [])]
            ).fit()
        finally:
            if relay is not None:
                relay.stop()
    best, best_loss = best_checkpoint(result)
    manifest = None
    if best is not None and (config.export.after_training if export is None else export):
        with best.as_directory() as folder:
            manifest = export_checkpoint(Path(folder), config)
        log.info("exported the best checkpoint (held-out loss %.5f) to %s", best_loss, manifest)
    return TrainingOutcome(
        run=run, path=str(result.path), metrics=dict(result.metrics or {}),
        best_checkpoint=best.path if best is not None else None, best_heldout_loss=best_loss, manifest=manifest,
        history=list(getattr(result, "return_value", None) or []),
    )
