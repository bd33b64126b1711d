"""Staking on the simulated network: WithdrawStake of a whole StakedSoma object and
SetModelCommissionRate (protocol.md §5, §4.3 fees; rules in `soma_ray.protocol.staking`)."""

from __future__ import annotations

from typing import Any

import pytest

from soma_ray.chain import errors
from soma_ray.chain.sim import SimChain
from soma_ray.chain.types import ModelStatus
from soma_ray.protocol.commitments import canonical_address
from soma_ray.protocol.fees import withdraw_value_fee
from tests.chain.kit import faucet_minted, total_supply
from tests.chain.test_sim_models import BASE_FEE, MIN_STAKE, SOMA, WRITE_FEE, active_model, charged

HALF = SOMA // 2


async def _bps(sim: SimChain) -> int:
    return (await sim.info()).value_fee_bps


async def _pool(sim: SimChain, model_id: str) -> tuple[int, int, int]:
    row = sim._read(lambda conn, s: conn.execute(
        "SELECT stake, pending_stake, pending_withdraw FROM models WHERE id = ?", (model_id,)).fetchone())
    return int(row["stake"]), int(row["pending_stake"]), int(row["pending_withdraw"])


async def _listed_stake(sim: SimChain, model_id: str) -> int:
    [listed] = [m for m in await sim.active_models() if m.model_id == model_id]
    return listed.stake


def _unminted(sim: SimChain) -> int:
    """Every shannon on the network less what the faucet minted: only slashing changes it."""
    return total_supply(sim.db_path) - faucet_minted(sim.db_path)


async def test_withdraw_pays_the_principal_back_and_leaves_the_pool_at_the_next_epoch(
    sim: SimChain, fund: Any
) -> None:
    owner, backer = await fund(2), await fund(1)
    model_id, _ = await active_model(sim, owner)
    supply = _unminted(sim)
    await sim.add_stake_to_model(backer, model_id, HALF)
    await sim.advance_epoch()
    assert await _listed_stake(sim, model_id) == MIN_STAKE + HALF
    [stake] = await sim.staked_soma(backer.address())
    epoch = (await sim.info()).epoch
    assert (stake.model_id, stake.principal, stake.stake_activation_epoch) == (model_id, HALF, epoch)
    assert stake.owner == canonical_address(backer.address())

    balance, bps = await sim.balance(backer.address()), await _bps(sim)
    tx = await sim.withdraw_stake(backer, stake.id)
    # a new coin, the gas coin, the system state written; the StakedSoma deleted (not counted)
    assert tx.fee == BASE_FEE + 3 * WRITE_FEE + withdraw_value_fee(HALF, bps)
    assert withdraw_value_fee(HALF, bps) == HALF * (bps // 2) // 10_000 > 0
    assert stake.id in tx.deleted and len(tx.created) == 1
    assert await sim.balance(backer.address()) == balance + HALF - tx.fee
    assert await sim.staked_soma(backer.address()) == []
    # the model keeps its weight until the epoch ends (process_pending_stake_withdraw)
    assert await _pool(sim, model_id) == (MIN_STAKE + HALF, 0, HALF)
    assert await _listed_stake(sim, model_id) == MIN_STAKE + HALF
    assert _unminted(sim) == supply
    await sim.advance_epoch()
    assert await _pool(sim, model_id) == (MIN_STAKE, 0, 0)
    assert await _listed_stake(sim, model_id) == MIN_STAKE
    assert _unminted(sim) == supply


async def test_withdraw_in_the_staking_epoch_takes_it_out_of_the_pending_stake(sim: SimChain, fund: Any) -> None:
    owner, backer = await fund(2), await fund(1)
    model_id, _ = await active_model(sim, owner)
    await sim.add_stake_to_model(backer, model_id, HALF)
    [stake] = await sim.staked_soma(backer.address())
    assert stake.stake_activation_epoch == (await sim.info()).epoch + 1  # counts from the next epoch
    await sim.withdraw_stake(backer, stake.id)
    assert await _pool(sim, model_id) == (MIN_STAKE, 0, 0)
    await sim.advance_epoch()
    assert await _listed_stake(sim, model_id) == MIN_STAKE  # never counted


async def test_withdraw_from_a_created_model_in_its_create_epoch(sim: SimChain, fund: Any) -> None:
    # A pre-active pool counted the stake at once; the chain takes it out of pending_stake (which
    # wraps below zero), so the balance drops at the boundary.
    owner = await fund(2)
    model_id = await sim.create_model(owner)
    [stake] = await sim.staked_soma(owner.address())
    balance = await sim.balance(owner.address())
    tx = await sim.withdraw_stake(owner, stake.id)
    assert await sim.balance(owner.address()) == balance + MIN_STAKE - tx.fee
    assert await _pool(sim, model_id) == (MIN_STAKE, -MIN_STAKE, 0)
    await sim.advance_epoch()
    assert (await sim.get_model(model_id)).stake == 0


async def test_withdraw_from_an_inactive_model_leaves_the_pool_at_once(sim: SimChain, fund: Any) -> None:
    owner, backer = await fund(2), await fund(1)
    model_id, _ = await active_model(sim, owner)
    await sim.add_stake_to_model(backer, model_id, HALF)
    await sim.advance_epoch()
    await sim.deactivate_model(owner, model_id)
    assert (await sim.get_model(model_id)).status is ModelStatus.INACTIVE
    [own] = await sim.staked_soma(owner.address())
    await sim.withdraw_stake(owner, own.id)
    assert await _pool(sim, model_id) == (HALF, 0, 0)
    [theirs] = await sim.staked_soma(backer.address())
    await sim.withdraw_stake(backer, theirs.id)
    assert await _pool(sim, model_id) == (0, 0, 0)


async def test_withdraw_refusals(sim: SimChain, fund: Any) -> None:
    owner, stranger = await fund(2), await fund(1)
    await sim.create_model(owner)
    [stake] = await sim.staked_soma(owner.address())
    before = await sim.balance(stranger.address())
    with pytest.raises(errors.ChainError, match="owned by"):  # refused before execution: free
        await sim.withdraw_stake(stranger, stake.id)
    with pytest.raises(errors.ObjectNotFound):
        await sim.withdraw_stake(stranger, "0x" + "77" * 32)
    assert await sim.balance(stranger.address()) == before
    # a coin is owned, so it executes and fails on its type, charged
    [coin] = await sim.coins(stranger.address())
    await charged(sim, stranger, errors.InvalidObjectType, lambda: sim.withdraw_stake(stranger, coin.id))
    await sim.withdraw_stake(owner, stake.id)
    with pytest.raises(errors.ObjectNotFound, match="withdrawn already"):  # the object is gone
        await sim.withdraw_stake(owner, stake.id)


async def test_commission_rate_is_staged_to_the_next_epoch(sim: SimChain, fund: Any) -> None:
    owner = await fund(2)
    model_id = await sim.create_model(owner, commission_rate=250)
    # only Active models (checked after the rate, before ownership)
    await charged(sim, owner, errors.ModelNotActive, lambda: sim.set_model_commission_rate(owner, model_id, 300))
    model_id, _ = await active_model(sim, owner)
    tx = await sim.set_model_commission_rate(owner, model_id, 300)
    assert tx.fee == BASE_FEE + 2 * WRITE_FEE  # gas coin, system state; no value fee
    info = await sim.get_model(model_id)
    assert (info.commission_rate, info.next_epoch_commission_rate) == (0, 300)
    await sim.set_model_commission_rate(owner, model_id, 10_000)  # the latest in the epoch wins; 100% allowed
    [listed] = [m for m in await sim.active_models() if m.model_id == model_id]
    assert (listed.commission_rate, listed.next_epoch_commission_rate) == (0, 10_000)
    await sim.advance_epoch()
    info = await sim.get_model(model_id)
    assert (info.commission_rate, info.next_epoch_commission_rate) == (10_000, 10_000)


async def test_commission_rate_refusals(sim: SimChain, fund: Any) -> None:
    owner, stranger = await fund(2), await fund(1)
    model_id, _ = await active_model(sim, owner)
    unknown = "0x" + "66" * 32
    # the rate is checked first, then the model, its state, its owner
    await charged(sim, owner, errors.ModelCommissionRateTooHigh,
                  lambda: sim.set_model_commission_rate(owner, unknown, 10_001))
    await charged(sim, owner, errors.ModelNotFound, lambda: sim.set_model_commission_rate(owner, unknown, 10))
    await charged(sim, stranger, errors.NotModelOwner, lambda: sim.set_model_commission_rate(stranger, model_id, 10))
    before = await sim.balance(owner.address())
    with pytest.raises(errors.ChainError, match="negative"):  # a u64: not even sent
        await sim.set_model_commission_rate(owner, model_id, -1)
    assert await sim.balance(owner.address()) == before
    await sim.deactivate_model(owner, model_id)
    await charged(sim, owner, errors.ModelNotActive, lambda: sim.set_model_commission_rate(owner, model_id, 10))
