"""The driver on the simulated network, without Ray: one submission per target, commit → reveal
in exactly the next epoch, claims from fill epoch + 2 (early ones wait), refusals, dry runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from soma_ray.chain.sim import SimChain
from soma_ray.chain.types import ModelStatus, Target, TargetStatus
from soma_ray.driver.actions import ActionStatus
from soma_ray.driver.driver import Driver
from soma_ray.driver.errors import DriverRefused
from soma_ray.protocol.commitments import canonical_address
from tests.driver.kit import chain_txs, make_driver, write_artifacts

FundFn = Any


async def _open_target(sim: SimChain) -> Target:
    return (await sim.all_targets("open"))[0]


async def _submit(driver: Driver, target: Target, data: bytes = b"hello soma " * 50) -> Any:
    embedding = np.ones(len(target.embedding), np.float32).tolist()
    return await driver.submit(target.id, data, target.model_ids[0], embedding, 0.0, 1.0)


async def test_only_sim_and_testnet_without_a_flag(served_sim: Any, fund: FundFn, tmp_path: Path) -> None:
    sim, server = served_sim
    signer = await fund(1)
    driver = make_driver(sim, server.url, signer, tmp_path)
    driver.network = "localnet"
    with pytest.raises(DriverRefused, match="allow_network"):
        await driver.start()
    driver.settings = driver.settings.model_copy(update={"allow_network": True})
    await driver.start()


async def test_one_submission_per_target_and_claims_wait_for_their_epoch(
    served_sim: Any, fund: FundFn, tmp_path: Path
) -> None:
    sim, server = served_sim
    signer = await fund(2)
    driver = make_driver(sim, server.url, signer, tmp_path)
    await driver.start()
    target = await _open_target(sim)
    assert (await _submit(driver, target)) is not None
    assert (await _submit(driver, target)) is None  # the ledger says: already submitted
    me = canonical_address(signer.address())
    assert chain_txs(sim, "SubmitData", me) == 1
    assert canonical_address((await sim.get_target(target.id)).submitter or "") == me

    assert await driver.claim([target.id]) == []  # fill epoch: the audit window is open
    assert driver.state.get(f"claim:{target.id}").status == ActionStatus.WAITING  # type: ignore[union-attr]
    await sim.advance_epoch()
    assert (await driver.tick()).claimed == []  # fill epoch + 1: still not due
    await sim.advance_epoch()
    assert (await driver.tick()).claimed == [target.id]
    assert chain_txs(sim, "ClaimRewards", me, ok=None) == 2  # one early (failed), one paid
    assert chain_txs(sim, "ClaimRewards", me) == 1
    ledger = driver.ledger()
    assert ledger.submissions == 1 and ledger.claims == 1
    assert ledger.bonds_locked == ledger.bonds_returned == 550 * 65
    assert ledger.rewards_as_submitter > 0 and ledger.claimer_incentives > 0


async def test_commit_then_reveal_in_exactly_the_next_epoch(served_sim: Any, fund: FundFn, tmp_path: Path) -> None:
    sim, server = served_sim
    signer = await fund(2)
    driver = make_driver(sim, server.url, signer, tmp_path)
    await driver.start()
    manifest = write_artifacts(tmp_path / "artifacts", sim)
    result = await driver.commit(str(manifest))
    model_id = result.model_id
    again = await driver.commit(str(manifest))
    assert again.status == ActionStatus.DONE and again.key == result.key
    model = await sim.get_model(model_id)
    assert model.status == ModelStatus.PENDING
    assert (await driver.tick()).revealed == []  # the commit epoch: too early
    await sim.advance_epoch()
    assert (await driver.tick()).revealed == [model_id]
    assert (await sim.get_model(model_id)).status == ModelStatus.ACTIVE
    me = canonical_address(signer.address())
    assert chain_txs(sim, "CreateModel", me) == chain_txs(sim, "CommitModel", me) == 1
    assert chain_txs(sim, "RevealModel", me) == 1
    status = await driver.status()
    assert status.model_status == ModelStatus.ACTIVE and status.next_deadline is None


async def test_refusals_and_dry_run(served_sim: Any, fund: FundFn, tmp_path: Path) -> None:
    sim, server = served_sim
    poor = make_driver(sim, server.url, await fund(0), tmp_path / "poor")
    await poor.start()
    target = await _open_target(sim)
    with pytest.raises(DriverRefused, match="cannot cover a bond"):
        await _submit(poor, target)
    capped = make_driver(sim, server.url, await fund(1), tmp_path / "capped", epoch_spend_cap=1000)
    await capped.start()
    with pytest.raises(DriverRefused, match="spend cap"):
        await _submit(capped, target)
    dry = make_driver(sim, server.url, await fund(1), tmp_path / "dry", dry_run=True)
    await dry.start()
    assert await _submit(dry, target) is None
    assert (await sim.get_target(target.id)).status == TargetStatus.OPEN


async def test_coins_are_split_for_concurrency_and_merged_when_scattered(
    served_sim: Any, fund: FundFn, tmp_path: Path
) -> None:
    sim, server = served_sim
    one = await fund(1)
    driver = make_driver(sim, server.url, one, tmp_path / "split", concurrent_submissions=3)
    await driver.start()
    me = canonical_address(one.address())
    await _submit(driver, await _open_target(sim))
    assert len(await sim.coins(me)) >= 3  # split from the single faucet coin before submitting
    many = await fund(10)
    scattered = make_driver(sim, server.url, many, tmp_path / "merge", concurrent_submissions=2)
    await scattered.start()
    await _submit(scattered, (await sim.all_targets("open"))[1])
    other = canonical_address(many.address())
    assert chain_txs(sim, "MergeCoins", other) == 1 and len(await sim.coins(other)) <= 4
