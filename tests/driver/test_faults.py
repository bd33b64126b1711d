"""Fault tests: the driver actor is killed at the worst moments and must recover from its ledger
and the chain — one commit, one reveal in exactly commit epoch + 1, one submission per target,
claims retried at the right epoch. Real Ray (the actor process exits; Ray restarts it and
retries the call), the simulated network, real HTTP for uploads."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
from pydantic import SecretStr

from soma_ray.chain.config import ChainConfig, WalletConfig
from soma_ray.chain.sim import SimChain
from soma_ray.chain.types import ModelStatus, Target
from soma_ray.config.jobs import RunConfig
from soma_ray.driver.actor import driver_handle, stop_driver
from soma_ray.protocol.commitments import canonical_address
from soma_ray.storage.config import LocalStorageConfig, StorageConfig
from tests.driver.kit import chain_txs, write_artifacts

pytestmark = pytest.mark.timeout(300)


class World:
    def __init__(self, sim: SimChain, server_url: str, root: Path) -> None:
        self.sim, self.server_url, self.root = sim, server_url, root
        self.configs: list[RunConfig] = []

    def driver(self, coins: int = 3, **settings: Any) -> tuple[Any, str, RunConfig]:
        """A funded wallet's driver actor (fresh ledger), with the given driver settings."""
        from soma_sdk import Keypair

        keypair = Keypair.generate()
        for _ in range(coins):
            asyncio.run(self.sim.faucet(keypair.address()))
        config = RunConfig(
            chain=ChainConfig(network="sim", sim=self.sim.settings),
            storage=StorageConfig(kind="local", local=LocalStorageConfig(
                root=self.sim.settings.blob_dir, base_url=self.server_url)),
            wallet=WalletConfig(secret_key=SecretStr(keypair.to_secret_key())),
            driver={"state_path": self.root / f"driver-{len(self.configs)}.db", **settings},
        )
        self.configs.append(config)
        return driver_handle(config), canonical_address(keypair.address()), config


@pytest.fixture
def world(served_sim: Any, ray_session: Any, tmp_path: Path) -> Iterator[World]:
    sim, server = served_sim
    w = World(sim, server.url, tmp_path)
    yield w
    for config in w.configs:
        stop_driver(config)


def _tx_epochs(sim: SimChain, kind: str, sender: str) -> list[int]:
    with sqlite3.connect(sim.settings.path / "sim.db") as conn:
        rows = conn.execute("SELECT epoch FROM txs WHERE kind = ? AND sender = ? AND ok = 1", (kind, sender))
        return [int(r[0]) for r in rows]


def _wait_for(predicate: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _model_status(sim: SimChain, model_id: str) -> ModelStatus:
    return asyncio.run(sim.get_model(model_id)).status


@pytest.mark.parametrize("failpoint", ["commit:recorded", "commit:sent", "reveal:due"])
def test_killed_driver_commits_once_and_reveals_once_in_the_right_epoch(world: World, failpoint: str) -> None:
    handle, me, _ = world.driver(failpoint=failpoint)
    manifest = write_artifacts(world.root / "artifacts", world.sim)
    result = ray.get(handle.commit.remote(str(manifest)))  # the call survives the driver's death
    model_id = result.model_id
    assert _model_status(world.sim, model_id) == ModelStatus.PENDING
    commit_epoch = _tx_epochs(world.sim, "CommitModel", me)
    assert len(commit_epoch) == 1

    asyncio.run(world.sim.advance_epoch())  # the reveal epoch: the actor's epoch watcher reveals
    _wait_for(lambda: _model_status(world.sim, model_id) == ModelStatus.ACTIVE, "the reveal")
    assert _tx_epochs(world.sim, "RevealModel", me) == [commit_epoch[0] + 1]
    assert chain_txs(world.sim, "CommitModel", me, ok=None) == 1  # never sent twice
    assert chain_txs(world.sim, "RevealModel", me, ok=None) == 1
    assert chain_txs(world.sim, "CreateModel", me, ok=None) == 1
    fired = ray.get(handle.status.remote())
    assert fired.model_status == ModelStatus.ACTIVE and not fired.pending


def _open_targets(sim: SimChain, n: int) -> list[Target]:
    return asyncio.run(sim.all_targets("open"))[:n]


def _submit(handle: Any, target: Target, data: bytes) -> Any:
    embedding = np.ones(len(target.embedding), np.float32).tolist()
    return ray.get(handle.submit.remote(target.id, data, target.model_ids[0], embedding, 0.0, 1.0))


@pytest.mark.parametrize("failpoint", ["submit:recorded", "submit:sent"])
def test_killed_during_a_submission_the_target_gets_exactly_one(world: World, failpoint: str) -> None:
    handle, me, _ = world.driver(failpoint=failpoint)
    target = _open_targets(world.sim, 1)[0]
    _submit(handle, target, b"a sample " * 40)
    assert _submit(handle, target, b"a sample " * 40) is None  # asked again: already ours
    assert chain_txs(world.sim, "SubmitData", me, ok=None) == 1
    assert canonical_address(asyncio.run(world.sim.get_target(target.id)).submitter or "") == me


def test_two_submitter_jobs_feeding_one_driver(world: World) -> None:
    """Both jobs find the same hits at once: each target gets one submission, nothing fails."""
    handle, me, config = world.driver(coins=4, concurrent_submissions=2)
    targets = _open_targets(world.sim, 4)
    results: list[Any] = []

    def job() -> None:
        other = driver_handle(config)  # a second job finds the same actor by name
        results.extend(_submit(other, t, f"data for {t.id}".encode() * 20) for t in targets)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == len(targets)
    assert chain_txs(world.sim, "SubmitData", me, ok=None) == len(targets)  # no double, no failure
    assert chain_txs(world.sim, "SubmitData", me, ok=True) == len(targets)


def test_an_early_claim_waits_and_is_made_at_fill_epoch_plus_two(world: World) -> None:
    handle, me, _ = world.driver()
    target = _open_targets(world.sim, 1)[0]
    _submit(handle, target, b"claim me " * 30)
    assert ray.get(handle.claim.remote([target.id])) == []  # AuditWindowOpen: kept, not dropped
    status = ray.get(handle.status.remote())
    assert f"claim:{target.id}" in status.pending
    asyncio.run(world.sim.advance_epoch())
    asyncio.run(world.sim.advance_epoch())  # fill epoch + 2: the epoch watcher claims
    _wait_for(lambda: ray.get(handle.ledger.remote()).claims == 1, "the claim")
    assert chain_txs(world.sim, "ClaimRewards", me, ok=True) == 1
    assert chain_txs(world.sim, "ClaimRewards", me, ok=False) == 1  # only the early one failed
