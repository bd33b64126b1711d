"""Ray Train + DeepSpeed on two CPU workers: loss goes down (ZeRO-2 and ZeRO-3), a killed job
and a dead worker both resume from the last checkpoint with the same losses, exports load and
reproduce the recorded held-out loss, a 2-trial sweep ranks its trials."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import mean
from typing import Any

import psutil
import pytest
import ray
import torch
from safetensors import safe_open
from soma_models.v1.torch import Model

from soma_ray.config import SweepConfig, TrainConfig
from soma_ray.display import Display
from soma_ray.display.render import PlainRenderer
from soma_ray.driver.artifacts import Artifacts
from soma_ray.protocol.commitments import commitment, embedding_commitment
from soma_ray.training.data import heldout_samples
from soma_ray.training.heldout import score_heldout
from soma_ray.training.state import TrainState
from soma_ray.training.sweep import run_sweep
from soma_ray.training.trainer import TrainingOutcome, run_training
from soma_ray.training.weights import model_config
from tests.training.kit import tiny_config, write_recipe

REPO = Path(__file__).resolve().parents[2]
STEPS = 16
pytestmark = pytest.mark.timeout(600)


def _losses(outcome: TrainingOutcome) -> dict[int, float]:
    return {h["step"]: h["loss"] for h in outcome.history}


def _heldout(outcome: TrainingOutcome) -> list[float]:
    return [h["heldout_loss"] for h in outcome.history if "heldout_loss" in h]


def _assert_learns(outcome: TrainingOutcome) -> None:
    losses = [loss for _, loss in sorted(_losses(outcome).items())]
    assert len(losses) == STEPS
    assert mean(losses[-3:]) < 0.75 * mean(losses[:2]), losses
    heldout = _heldout(outcome)
    assert len(heldout) == STEPS // 4 and heldout[-1] < heldout[0], heldout


@pytest.fixture(scope="module")
def baseline(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainConfig, TrainingOutcome]:
    """An uninterrupted ZeRO-2 float32 run with gradient accumulation; the resume tests compare against it."""
    config = tiny_config(
        tmp_path_factory.mktemp("baseline"), name="baseline", max_steps=STEPS, micro_batch=1, grad_accum=2
    )
    with session_of(Display(PlainRenderer(BASELINE_DISPLAY.append, interval_s=0))):
        return config, run_training(config, export=False)


BASELINE_DISPLAY: list[str] = []  # what the baseline run showed on its job's display


@contextmanager
def session_of(display: Display) -> Iterator[Display]:
    """`display` as the job's display while the block runs (run_training feeds the open one)."""
    # the module, not the package's `session` function of the same name
    sessions = importlib.import_module("soma_ray.display.session")

    sessions._current = display
    try:
        yield display
    finally:
        sessions._current = None


def test_training_figures_reach_the_jobs_display(baseline: tuple[TrainConfig, TrainingOutcome]) -> None:
    """Rank 0's reports travel from Ray Train's controller to this process's display: step/total,
    loss, held-out loss, tokens/s, in order, up to the last step."""
    assert BASELINE_DISPLAY[0].startswith("training run baseline")
    figures = [line for line in BASELINE_DISPLAY if line.startswith("training: step ")]
    steps = [int(line.split()[2].split("/")[0]) for line in figures]
    assert steps == sorted(steps) and steps[-1] == STEPS, BASELINE_DISPLAY
    assert all(f"/{STEPS} | loss " in line and "tokens/s" in line for line in figures)
    assert any("held-out " in line for line in figures)


@pytest.fixture(scope="module")
def zero3(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainConfig, TrainingOutcome]:
    config = tiny_config(
        tmp_path_factory.mktemp("zero3"), name="zero3", max_steps=STEPS, zero_stage=3, precision="bf16"
    )
    return config, run_training(config)


def test_zero2_two_workers_reduce_the_loss(baseline: tuple[TrainConfig, TrainingOutcome]) -> None:
    _assert_learns(baseline[1])


def test_zero3_bf16_two_workers_reduce_the_loss(zero3: tuple[TrainConfig, TrainingOutcome]) -> None:
    _assert_learns(zero3[1])


def test_export_loads_and_the_scorer_reproduces_the_recorded_heldout_loss(
    zero3: tuple[TrainConfig, TrainingOutcome],
) -> None:
    config, outcome = zero3
    assert outcome.manifest is not None and outcome.best_checkpoint is not None
    artifacts = Artifacts.read(outcome.manifest)
    # The best checkpoint is the lowest held-out loss, not the latest.
    assert outcome.best_heldout_loss == min(_heldout(outcome))
    assert artifacts.step == TrainState.read(Path(outcome.best_checkpoint)).step
    assert artifacts.heldout_loss == pytest.approx(outcome.best_heldout_loss, rel=1e-5)

    weights = artifacts.weights_path(outcome.manifest).read_bytes()
    assert commitment(weights) == artifacts.weights_blake2b and len(weights) == artifacts.weights_size
    model = Model.load_bytes(weights, model_config(config.architecture))
    reference = Model(model_config(config.architecture)).save_bytes()
    with safe_open(str(artifacts.weights_path(outcome.manifest)), "pt") as exported:
        keys = list(exported.keys())
        assert {exported.get_tensor(k).dtype for k in keys} == {torch.float32}
    assert keys == sorted(keys)
    assert len(keys) == len(Model(model_config(config.architecture)).state_dict()) and len(reference) == len(weights)

    score = score_heldout(model.eval(), heldout_samples(config.data, config.heldout))
    assert score.loss == pytest.approx(outcome.best_heldout_loss, rel=1e-5)
    assert embedding_commitment(score.embedding) == artifacts.embedding_commitment
    assert len(artifacts.embedding) == config.architecture.embedding_dim


def test_export_cli_from_a_zero3_checkpoint(zero3: tuple[TrainConfig, TrainingOutcome], tmp_path: Path) -> None:
    config, outcome = zero3
    recipe = write_recipe(config, tmp_path / "train.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "soma_ray.cli", "--config", str(recipe), "export", str(outcome.best_checkpoint),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = Path(done.stdout.strip().split("artifacts: ")[-1].replace("\n", ""))
    assert Artifacts.read(manifest).heldout_loss == pytest.approx(outcome.best_heldout_loss, rel=1e-5)


def _committed_step(run_dir: Path) -> int | None:
    """The step of the latest checkpoint Ray Train has registered (what a resume starts from)."""
    try:
        snapshot = json.loads((run_dir / "checkpoint_manager_snapshot.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    latest = snapshot.get("latest_checkpoint_result")
    return int(latest["metrics"]["step"]) if latest else None


def _wait_for_checkpoint(run_dir: Path, process: subprocess.Popen[str] | None = None) -> int:
    for _ in range(2400):
        step = _committed_step(run_dir)
        if step is not None:
            return step
        if process is not None and process.poll() is not None:
            raise AssertionError(f"training exited early:\n{process.stdout.read() if process.stdout else ''}")
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def _rerun_of(config: TrainConfig, name: str, tmp_path: Path) -> TrainConfig:
    """The baseline's run again, under its own name and storage."""
    config = config.model_copy(deep=True)
    config.training.name = name
    config.training.storage_path = str(tmp_path / "runs")
    return config


def _assert_continues_like(resumed: TrainingOutcome, baseline: TrainingOutcome, after: int) -> None:
    ours, reference = _losses(resumed), _losses(baseline)
    first = min(ours)
    assert after <= first - 1 < STEPS, "the run did not resume from a checkpoint"
    assert sorted(ours) == list(range(first, STEPS + 1))
    for step, loss in ours.items():
        assert loss == pytest.approx(reference[step], rel=1e-5), f"step {step}"


def test_a_killed_job_resumes_at_the_same_step_with_the_same_losses(
    baseline: tuple[TrainConfig, TrainingOutcome], tmp_path: Path
) -> None:
    config = _rerun_of(baseline[0], "killed", tmp_path)
    recipe = write_recipe(config, tmp_path / "train.yaml")
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    job = subprocess.Popen(
        [sys.executable, "jobs/train.py", "--config", str(recipe)], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        checkpointed = _wait_for_checkpoint(tmp_path / "runs" / "killed", job)
        os.killpg(job.pid, signal.SIGKILL)
    finally:
        job.wait(timeout=60)
    assert checkpointed < STEPS
    resumed = run_training(config, export=False)  # same name, same storage: Ray Train resumes
    _assert_continues_like(resumed, baseline[1], checkpointed)


def _kill_a_training_worker(run_dir: Path, killed: list[int]) -> None:
    _wait_for_checkpoint(run_dir)
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if "RayTrainWorker" in " ".join(proc.info["cmdline"] or []):
            os.kill(proc.info["pid"], signal.SIGKILL)
            killed.append(proc.info["pid"])
            return


def test_a_dead_worker_restarts_from_the_last_checkpoint(
    baseline: tuple[TrainConfig, TrainingOutcome], tmp_path: Path
) -> None:
    config = _rerun_of(baseline[0], "worker-death", tmp_path)
    config.training.max_failures = 1
    killed: list[int] = []
    killer = threading.Thread(target=_kill_a_training_worker, args=(tmp_path / "runs" / "worker-death", killed))
    killer.start()
    outcome = run_training(config, export=False)
    killer.join()
    assert killed, "no training worker was found to kill"
    _assert_continues_like(outcome, baseline[1], 4)


def test_a_two_trial_sweep_ranks_its_trials(ray_session: Any, tmp_path: Path) -> None:
    base = tiny_config(tmp_path, num_workers=1, max_steps=4, eval_every=2, checkpoint_every=4)
    raw = base.model_dump(mode="json", exclude_unset=True)
    raw["kind"] = "sweep"
    raw["sweep"] = {"name": "lr", "parameters": {"training.lr": {"kind": "grid", "values": [0.0001, 0.02]}}}
    rows = run_sweep(SweepConfig.model_validate(raw))
    assert len(rows) == 2 and all(r.status == "ok" for r in rows)
    assert rows[0].heldout_loss <= rows[1].heldout_loss
    assert {r.params["training.lr"] for r in rows} == {0.0001, 0.02}
    assert rows[0].params["training.lr"] == 0.02  # 200× the learning rate learns more in 4 steps


def test_concurrent_trials_follow_the_cluster(ray_session: Any, tmp_path: Path) -> None:
    """The session cluster has 2 CPUs: whole 1-CPU runs fit once, half-CPU runs three times."""
    from soma_ray.training.sweep import concurrent_trials

    assert concurrent_trials(tiny_config(tmp_path, num_workers=1)) == 1
    assert concurrent_trials(tiny_config(tmp_path, num_workers=1, cpus_per_worker=0.5)) == 3
    assert concurrent_trials(tiny_config(tmp_path, num_workers=2, use_gpu=True)) == 1  # no GPUs: still 1
