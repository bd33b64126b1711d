"""Hyperparameter sweeps: Ray Tune trials around the trainer, ranked by held-out loss.

Each trial is a small Tune function that builds a TorchTrainer with its own parameters and a
`TuneReportCallback`, so the trial's workers are scheduled by Ray Train (the Ray Train V2 way
of combining the two). Trials run `max_concurrent_trials` at a time: by default as many as the
cluster's GPUs (or CPUs, for CPU training) fit whole training runs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import ray
from ray import tune
from rich.console import Console
from rich.table import Table

from soma_ray.runtime import configure_logging, ensure_ray
from soma_ray.training.config import SweepConfig, SweepParameter, TrainConfig
from soma_ray.training.errors import SweepFailed
from soma_ray.training.trainer import check_inputs, fresh_run_name, portable, run_training, storage_path

log = logging.getLogger("soma_ray.sweep")

TRIAL_DRIVER_CPU = 0.01



@dataclass(frozen=True)
class TrialRow:
    trial: str
    params: dict[str, Any]
    heldout_loss: float  # the trial's best held-out exact-scorer loss
    step: int
    status: str


def search_space(parameters: dict[str, SweepParameter]) -> dict[str, Any]:
    space: dict[str, Any] = {}
    for path, p in parameters.items():
        values, low, high = p.values or [], float(p.low or 0), float(p.high or 0)  # validated by SweepParameter
        if p.kind == "grid":
            space[path] = tune.grid_search(values)
        elif p.kind == "choice":
            space[path] = tune.choice(values)
        elif p.kind == "uniform":
            space[path] = tune.uniform(low, high)
        elif p.kind == "loguniform":
            space[path] = tune.loguniform(low, high)
        else:
            space[path] = tune.randint(int(low), int(high))
    return space


def trial_config(base: TrainConfig, params: dict[str, Any], name: str) -> TrainConfig:
    """The base config with the trial's values at their dotted paths and its own run name."""
    raw = base.model_dump(mode="json", exclude_unset=True, exclude={"kind"})
    for path, value in {**params, "training.name": name}.items():
        section, field = path.split(".", 1)
        raw.setdefault(section, {})[field] = value
    return TrainConfig.model_validate(raw)


def concurrent_trials(config: TrainConfig) -> int:
    """How many whole training runs the cluster fits at once (at least 1)."""
    t = config.training
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    if t.use_gpu:
        per_trial, have = t.num_workers * t.gpus_per_worker, resources.get("GPU", 0.0)
    else:
        per_trial = t.num_workers * t.cpus_per_worker + TRIAL_DRIVER_CPU
        have = resources.get("CPU", 0.0)
    return max(1, int(have // per_trial)) if per_trial > 0 else 1


def _trainable(base: TrainConfig, sweep: str) -> Any:
    def run_trial(params: dict[str, Any]) -> None:
        from ray.tune.integration.ray_train import TuneReportCallback

        name = f"{sweep}-{tune.get_context().get_trial_id()}"
        callback = TuneReportCallback()  # type: ignore[no-untyped-call]
        run_training(trial_config(base, params, name), callbacks=[callback], export=False, progress=False)

    # The trial function only drives its trainer; the workers hold the real resources
    # (Tune refuses an empty request, hence a sliver of a CPU).
    return tune.with_resources(run_trial, {"cpu": TRIAL_DRIVER_CPU})


def _row(result: Any, params: dict[str, Any]) -> TrialRow:
    history = result.metrics_dataframe
    best, step = math.inf, 0
    if history is not None and "heldout_loss" in history:
        evaluated = history.dropna(subset=["heldout_loss"])
        if len(evaluated):
            at = evaluated["heldout_loss"].idxmin()
            best, step = float(evaluated.loc[at, "heldout_loss"]), int(evaluated.loc[at, "step"])
    status = "error" if result.error else "ok"
    trial = str((result.metrics or {}).get("trial_id") or str(result.path).rsplit("/", 1)[-1])
    return TrialRow(trial, params, best, step, status)


def run_sweep(config: SweepConfig) -> list[TrialRow]:
    """Run every trial; return them ranked by held-out loss (best first) and print the table."""
    configure_logging()
    name = config.sweep.name or fresh_run_name("sweep")
    base = portable(TrainConfig.model_validate(
        config.model_dump(mode="json", exclude_unset=True, exclude={"kind", "sweep", "wallet", "storage"})
    ))
    check_inputs(base)
    ensure_ray()
    limit = config.sweep.max_concurrent_trials or concurrent_trials(base)
    log.info("sweep %s: %s, up to %d trials at once", name, ", ".join(config.sweep.parameters), limit)
    tuner = tune.Tuner(
        _trainable(base, name),
        param_space=search_space(config.sweep.parameters),
        tune_config=tune.TuneConfig(num_samples=config.sweep.num_samples, max_concurrent_trials=limit),
        run_config=tune.RunConfig(name=name, storage_path=storage_path(config.training.storage_path), verbose=0),
    )
    grid = tuner.fit()
    results = [grid[i] for i in range(len(grid))]
    rows = sorted((_row(r, {k: (r.config or {})[k] for k in config.sweep.parameters}) for r in results),
                  key=lambda row: (row.status != "ok", row.heldout_loss))
    Console(width=max(120, Console().width)).print(ranking_table(name, rows))
    if rows and all(row.status == "error" for row in rows):
        raise SweepFailed(f"all {len(rows)} trials of sweep {name} failed; see the first trial's error above")
    return rows


def ranking_table(name: str, rows: list[TrialRow]) -> Table:
    table = Table(title=f"sweep {name}: trials ranked by held-out loss (exact scorer)")
    table.add_column("rank", justify="right")
    table.add_column("trial")
    params = list(rows[0].params) if rows else []
    for path in params:
        table.add_column(path.split(".", 1)[1])
    table.add_column("held-out loss", justify="right")
    table.add_column("at step", justify="right")
    table.add_column("status")
    for i, row in enumerate(rows, 1):
        values = [f"{row.params[p]:.4g}" if isinstance(row.params[p], float) else str(row.params[p]) for p in params]
        loss = f"{row.heldout_loss:.5f}" if math.isfinite(row.heldout_loss) else "-"
        table.add_row(str(i), row.trial, *values, loss, str(row.step), row.status)
    return table
