"""Epoch change, gas and persistence on the simulated network (protocol.md §3.2–§3.5, §4.3 gas,
§7, §11)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import arrgen
import numpy as np
import pytest
from soma_sdk import Keypair

from soma_ray.chain import errors
from soma_ray.chain.sim import SimChain
from soma_ray.chain.types import Target
from soma_ray.protocol.assignment import select_models_weighted_knn
from soma_ray.protocol.commitments import canonical_address
from tests.conftest import small_sim_settings

SOMA = 1_000_000_000
BASE_FEE = 1000
EMISSION = 1_370 * SOMA
RPT = 12_685_185


async def fill(sim: SimChain, kp: Keypair, target: Target) -> Any:
    return await sim.submit_data(
        kp, target.id, data=b"d" * 64, data_url="http://127.0.0.1:9200/d", model_id=target.model_ids[0],
        embedding=np.zeros(target.embedding.size, np.float32), distance_score=0.1, loss_score=[1.0],
    )


async def test_epoch_change_creates_seeded_targets(sim: SimChain) -> None:
    before = {t.id for t in await sim.all_targets()}
    info0 = await sim.info()
    assert await sim.advance_epoch() == 1
    info = await sim.info()
    assert info.epoch == 1
    assert info.epoch_start_ms == info0.epoch_start_ms + info.params.epoch_duration_ms
    assert info.reward_per_target == RPT
    assert info.targets_generated_this_epoch == 10
    assert info.hits_this_epoch == 0

    new = [t for t in await sim.all_targets() if t.id not in before]
    assert len(new) == 10
    assert {t.id for t in new} == {t.id for t in await sim.all_targets("open")}
    models = await sim.active_models()
    ids, embs, stakes = [m.model_id for m in models], np.stack([m.embedding for m in models]), [m.stake for m in models]
    for t in new:
        seed = int.from_bytes(bytes.fromhex(t.id[2:])[:8], "little")
        expected = arrgen.normal_array(seed, [info.embedding_dim], 0.0, 1.0)
        np.testing.assert_array_equal(t.embedding, expected)
        assert t.model_ids == select_models_weighted_knn(expected, ids, embs, stakes, 3)
        assert len(t.model_ids) == 3
        assert (t.generation_epoch, t.reward_pool, t.status) == (1, RPT, "open")
        assert t.distance_threshold == info.distance_threshold


async def test_epoch_change_moves_the_emission_pool(sim: SimChain) -> None:
    """Emission leaves the pool, 30% of emission + fees returns, 10 targets are pre-funded."""
    info0 = await sim.info()
    await sim.advance_epoch()
    distributed = EMISSION  # no fees were paid in epoch 0 (faucet and genesis are system txs)
    back = distributed - distributed * 7000 // 10_000
    assert (await sim.info()).emission_pool_balance == info0.emission_pool_balance - EMISSION + back - 10 * RPT


async def test_fees_are_distributed_at_epoch_change(sim: SimChain, fund: Any) -> None:
    kp = await fund(1)
    fees = 0
    for _ in range(3):
        with pytest.raises(errors.ModelMinStakeNotMet):
            await sim.create_model(kp, stake=1)
        fees += BASE_FEE
    tx = await fill(sim, kp, (await sim.list_targets("open")).targets[0])
    fees += tx.fee
    info0 = await sim.info()
    await sim.advance_epoch()
    distributed = EMISSION + fees
    back = distributed - distributed * 7000 // 10_000
    assert (await sim.info()).emission_pool_balance == info0.emission_pool_balance - EMISSION + back - 10 * RPT


async def test_value_fee_decays_on_the_network(sim: SimChain) -> None:
    seen = []
    for _ in range(4):
        await sim.advance_epoch()
        seen.append((await sim.info()).value_fee_bps)
    assert seen == [9, 8, 7, 7]


async def test_no_targets_without_active_models(tmp_path: Path) -> None:
    sim = SimChain(small_sim_settings(tmp_path, genesis_models=0))
    assert await sim.all_targets() == []
    await sim.advance_epoch()
    assert await sim.all_targets() == []
    assert (await sim.info()).targets_generated_this_epoch == 0


async def test_epoch_targets_stop_at_the_budget(tmp_path: Path) -> None:
    """hits_per_epoch 4 -> reward 274 SOMA: the 1096-SOMA budget pays only 4 of the 10 targets."""
    sim = SimChain(small_sim_settings(tmp_path, params={"target_initial_targets_per_epoch": 10, "target_hits_per_epoch": 4}))
    await sim.advance_epoch()
    info = await sim.info()
    assert info.reward_per_target == 274 * SOMA
    assert len(await sim.all_targets("open")) == 4
    assert info.targets_generated_this_epoch == 4


async def test_epoch_targets_stop_when_the_pool_runs_dry(tmp_path: Path) -> None:
    pool = 2_000 * SOMA
    sim = SimChain(small_sim_settings(tmp_path, emission_pool=pool, genesis_targets=0,
                            params={"target_initial_targets_per_epoch": 10, "target_hits_per_epoch": 8}))
    await sim.advance_epoch()
    info = await sim.info()
    rpt = 1_096 * SOMA // 8
    back = EMISSION - EMISSION * 7000 // 10_000
    after_emission = pool - EMISSION + back  # 1041 SOMA: 7 targets of 137 SOMA
    assert info.reward_per_target == rpt
    assert len(await sim.all_targets("open")) == after_emission // rpt == 7
    assert info.emission_pool_balance == after_emission - 7 * rpt


# -- difficulty on the network ---------------------------------------------------------------------


async def test_difficulty_bootstraps_then_eases_with_few_hits(sim: SimChain, fund: Any) -> None:
    kp = await fund(1)
    await sim.advance_epoch()  # no hits: EMA stays 0, threshold untouched
    info = await sim.info()
    assert info.hits_ema == 0
    assert info.distance_threshold == float(np.float32(1.05))
    await fill(sim, kp, (await sim.list_targets("open")).targets[0])
    assert (await sim.info()).hits_this_epoch == 1
    await sim.advance_epoch()  # EMA bootstraps to 1 hit < 86,400: easier
    info = await sim.info()
    assert info.hits_ema == 1 and info.hits_this_epoch == 0
    assert info.distance_threshold == pytest.approx(1.10, abs=2e-6)
    assert float(np.float32(info.distance_threshold)) == info.distance_threshold
    for t in await sim.all_targets("open"):
        assert t.distance_threshold == info.distance_threshold  # new targets carry it
    # targets made earlier keep theirs
    assert all(t.distance_threshold == pytest.approx(1.05, abs=1e-6) for t in await sim.all_targets(epoch=1))
    await sim.advance_epoch()  # EMA 9000*1//10000 = 0: no adjustment this time
    info = await sim.info()
    assert info.hits_ema == 0
    assert info.distance_threshold == pytest.approx(1.10, abs=2e-6)


async def test_difficulty_hardens_with_many_hits(tmp_path: Path) -> None:
    sim = SimChain(small_sim_settings(tmp_path, params={"target_initial_targets_per_epoch": 10, "target_hits_per_epoch": 1}))
    kp = Keypair.generate()
    await sim.faucet(kp.address())
    targets = (await sim.list_targets("open")).targets
    await fill(sim, kp, targets[0])
    await fill(sim, kp, targets[1])
    await sim.advance_epoch()
    info = await sim.info()
    assert info.hits_ema == 2
    assert info.distance_threshold == pytest.approx(1.00, abs=2e-6)
    # a submission at the old threshold no longer passes on a new target
    new = (await sim.list_targets("open")).targets[0]
    with pytest.raises(errors.DistanceExceedsThreshold):
        await sim.submit_data(
            kp, new.id, data=b"x", data_url="http://x", model_id=new.model_ids[0],
            embedding=np.zeros(new.embedding.size, np.float32), distance_score=1.04, loss_score=[1.0],
        )


# -- gas ----------------------------------------------------------------------------------------------


async def test_gas_coin_below_base_fee_is_taken_whole(sim: SimChain, fund: Any) -> None:
    rich = await fund(1)
    broke = Keypair.generate()
    await sim.pay_coins(rich, [broke.address()], [BASE_FEE - 1])
    target = (await sim.list_targets("open")).targets[0]
    with pytest.raises(errors.InsufficientGas) as raised:
        await fill(sim, broke, target)
    assert raised.value.digest
    assert await sim.coins(broke.address()) == []
    assert (await sim.get_target(target.id)).status == "open"


async def test_no_coin_at_all_is_insufficient_gas(sim: SimChain) -> None:
    with pytest.raises(errors.InsufficientGas):
        await sim.create_model(Keypair.generate())


async def test_failures_drain_a_small_coin_then_take_it_whole(sim: SimChain, fund: Any) -> None:
    """1500: a failed tx costs 1000, leaving 500 < base fee, which the next tx takes whole."""
    owner = await fund(1)
    model_id = await sim.create_model(owner)
    poor = Keypair.generate()
    await sim.pay_coins(owner, [poor.address()], [1500])
    with pytest.raises(errors.ModelNotActive):
        await sim.deactivate_model(poor, model_id)
    assert await sim.balance(poor.address()) == 500
    with pytest.raises(errors.InsufficientGas):
        await sim.deactivate_model(poor, model_id)
    assert await sim.coins(poor.address()) == []
    with pytest.raises(errors.InsufficientGas):  # nothing left at all
        await sim.deactivate_model(poor, model_id)


async def test_successful_tx_that_cannot_pay_its_writes_is_reverted(sim: SimChain, fund: Any) -> None:
    rich = await fund(1)
    poor = Keypair.generate()
    await sim.pay_coins(rich, [poor.address()], [1500])
    target = (await sim.list_targets("open")).targets[0]
    # empty data: bond 0, so only the fee (1000 + 4 x 300) is missing
    with pytest.raises(errors.InsufficientGas):
        await sim.submit_data(
            poor, target.id, data=b"", data_url="http://x", model_id=target.model_ids[0],
            embedding=np.zeros(target.embedding.size, np.float32), distance_score=0.0, loss_score=[1.0],
        )
    assert await sim.balance(poor.address()) == 500
    assert (await sim.get_target(target.id)).status == "open"
    assert (await sim.info()).hits_this_epoch == 0


async def test_exact_base_fee_failure_deletes_the_emptied_coin(sim: SimChain, fund: Any) -> None:
    rich = await fund(1)
    poor = Keypair.generate()
    await sim.pay_coins(rich, [poor.address()], [BASE_FEE])
    with pytest.raises(errors.ModelMinStakeNotMet):
        await sim.create_model(poor, stake=1)
    assert await sim.coins(poor.address()) == []


# -- persistence and determinism ---------------------------------------------------------------------


async def test_second_chain_object_sees_the_same_state(tmp_path: Path) -> None:
    cfg = small_sim_settings(tmp_path)
    one = SimChain(cfg)
    kp = Keypair.generate()
    await one.faucet(kp.address())
    await fill(one, kp, (await one.list_targets("open")).targets[0])
    await one.advance_epoch()

    two = SimChain(cfg)
    assert await two.info() == await one.info()
    assert [t.id for t in await two.all_targets()] == [t.id for t in await one.all_targets()]
    assert await two.coins(kp.address()) == await one.coins(kp.address())
    # and writes through the second are visible through the first
    await two.advance_epoch()
    assert (await one.info()).epoch == 2
    created = await two.create_model(kp)
    assert (await one.get_model(created)).owner == canonical_address(kp.address())


async def test_genesis_is_deterministic(tmp_path: Path) -> None:
    cfg = small_sim_settings(tmp_path)

    async def snapshot() -> tuple[Any, ...]:
        sim = SimChain(cfg)
        targets = await sim.all_targets()
        models = await sim.active_models()
        manifests = await sim.model_manifests([m.model_id for m in models])
        blobs = sorted((p.relative_to(cfg.blob_dir).as_posix(), p.read_bytes())
                       for p in cfg.blob_dir.rglob("*") if p.is_file())
        return (
            await sim.info(),
            [(t.id, t.embedding.tobytes(), tuple(t.model_ids), t.reward_pool) for t in targets],
            [(m.model_id, m.owner, m.embedding.tobytes(), m.stake) for m in models],
            manifests,
            blobs,
        )

    first = await snapshot()
    shutil.rmtree(cfg.path)
    second = await snapshot()
    assert first == second
    # genesis model weights do not depend on the folder: same encrypted bytes elsewhere
    other = SimChain(small_sim_settings(tmp_path / "elsewhere"))
    other_manifests = await other.model_manifests([m.model_id for m in await other.active_models()])
    assert sorted(m.checksum for m in other_manifests) == sorted(m.checksum for m in first[3])


async def test_genesis_reward_and_targets(sim: SimChain) -> None:
    info = await sim.info()
    # (1370 * 0.8) / (2 * 10 initial targets) with the test network's 10 targets per epoch
    assert info.reward_per_target == 54_800_000_000
    targets = await sim.all_targets()
    assert len(targets) == 10
    assert all(t.generation_epoch == 0 and t.reward_pool == info.reward_per_target for t in targets)
    assert info.emission_pool_balance == 1_000_000 * SOMA - 10 * 54_800_000_000


async def test_zero_hits_per_epoch_does_not_break_epoch_change(tmp_path: Path) -> None:
    """reward_per_target divides by max(target_hits_per_epoch, 1) on chain."""
    sim = SimChain(small_sim_settings(tmp_path, params={"target_initial_targets_per_epoch": 10, "target_hits_per_epoch": 0}))
    await sim.advance_epoch()
    info = await sim.info()
    assert info.reward_per_target == 1_096 * SOMA
    assert len(await sim.all_targets("open")) == 1  # the budget pays one target
