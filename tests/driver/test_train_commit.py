"""`jobs/train.py` with `export.commit: true` and two rounds: each export goes to the wallet's
driver actor (create, commit, reveal in the next epoch), and the second round starts from the
revealed weights. The secret reaches the job only through its environment."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml
from soma_sdk import Keypair

from soma_ray.board.snapshot import SnapshotStore
from soma_ray.chain.types import ModelStatus
from soma_ray.config import TrainConfig, load_config
from soma_ray.driver.actions import ActionStatus, CommitPayload
from soma_ray.driver.actor import driver_handle, stop_driver
from soma_ray.driver.state import DriverState
from tests.training.kit import write_corpus

REPO = Path(__file__).resolve().parents[2]


def _advance_after_first_commit(sim: Any, ledger: Path, timeout: float = 400) -> None:
    """The simulated clock: move to the reveal epoch once round 1 is committed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ledger.exists() and DriverState(ledger).actions(CommitPayload, (ActionStatus.DONE,)):
            asyncio.run(sim.advance_epoch())
            return
        time.sleep(0.2)


def _recipe(sim: Any, server: Any, tmp_path: Path, export: dict[str, Any]) -> Path:
    recipe = {
        "kind": "train",
        "chain": {"network": "sim", "sim": sim.settings.model_dump(mode="json")},
        "storage": {"kind": "local", "local": {"root": str(sim.settings.blob_dir), "base_url": server.url}},
        "wallet": {"secret_key": "${SOMA_SECRET_KEY}"},
        "driver": {"state_path": str(tmp_path / "driver.db")},
        "data": {"source": "files", "path": str(write_corpus(tmp_path)), "max_bytes": 4096},
        "heldout": {"every": 4, "max_samples": 2},
        "training": {"name": "commit-me", "storage_path": str(tmp_path / "runs"), "num_workers": 1,
                     "precision": "float32", "micro_batch": 2, "warmup_steps": 0, "max_steps": 1,
                     "eval_every": 1, "checkpoint_every": 1, "max_failures": 0},
        "export": {"dir": str(tmp_path / "artifacts"), **export},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _funded(sim: Any) -> Keypair:
    keypair = Keypair.generate()
    for _ in range(2):
        asyncio.run(sim.faucet(keypair.address()))
    return keypair


@pytest.mark.timeout(600)
def test_train_job_commits_through_the_driver(served_sim: Any, ray_session: Any, tmp_path: Path) -> None:
    sim, server = served_sim
    keypair = _funded(sim)
    path = _recipe(sim, server, tmp_path, {"commit": True, "rounds": 2})
    secret = keypair.to_secret_key()
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address, "SOMA_SECRET_KEY": secret}
    # the wallet's driver actor already runs, started by something that gave it no epoch hook
    driver_handle(load_config(TrainConfig, path, [], env={"SOMA_SECRET_KEY": secret}))
    clock = threading.Thread(target=_advance_after_first_commit, args=(sim, tmp_path / "driver.db"))
    clock.start()
    try:
        job = subprocess.run([sys.executable, "jobs/train.py", "--config", str(path)], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=540, check=False)
        clock.join()
        assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
        assert secret not in job.stdout + job.stderr
        state = DriverState(tmp_path / "driver.db")
        first, second = state.actions(CommitPayload, (ActionStatus.DONE,))
        assert first.payload.commit_epoch is not None
        reveal = state.get(f"reveal:{first.payload.model_id}:{first.payload.commit_epoch}")
        assert reveal is not None and reveal.status == ActionStatus.DONE
        assert reveal.epoch == first.payload.commit_epoch + 1
        assert second.payload.commit_epoch == reveal.epoch and second.payload.checksum != first.payload.checksum
        model = asyncio.run(sim.get_model(first.payload.model_id))
        assert model.status == ModelStatus.ACTIVE and model.has_pending_update  # round 2 awaits its reveal
        assert "round1" in second.payload.manifest_path
        # the job gave the running actor the review's hook: a board snapshot of the reveal epoch
        assert reveal.epoch in SnapshotStore(tmp_path / "board").epochs()
    finally:
        stop_driver(load_config(TrainConfig, path, [], env={"SOMA_SECRET_KEY": secret}))


@pytest.mark.timeout(600)
def test_cli_train_with_export_commit_commits_through_the_driver(
    served_sim: Any, ray_session: Any, tmp_path: Path
) -> None:
    """`soma-ray --config R --set export.commit=true train` takes the job's path: one round, committed."""
    sim, server = served_sim
    keypair = _funded(sim)
    path = _recipe(sim, server, tmp_path, {})  # the recipe itself does not commit
    secret = keypair.to_secret_key()
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address, "SOMA_SECRET_KEY": secret}
    try:
        cli = subprocess.run(
            [sys.executable, "-m", "soma_ray.cli", "--config", str(path), "--set", "export.commit=true", "train"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=540, check=False,
        )
        assert cli.returncode == 0, cli.stdout[-3000:] + cli.stderr[-3000:]
        assert secret not in cli.stdout + cli.stderr
        (commit,) = DriverState(tmp_path / "driver.db").actions(CommitPayload, (ActionStatus.DONE,))
        assert f"committed {commit.payload.manifest_path}" in cli.stdout
        model = asyncio.run(sim.get_model(commit.payload.model_id))
        assert model.status == ModelStatus.PENDING  # committed, to be revealed in the next epoch
    finally:
        stop_driver(load_config(TrainConfig, path, [], env={"SOMA_SECRET_KEY": secret}))
