"""The driver's staking actions on the simulated network, without Ray: AddStakeToModel once per
request id, WithdrawStake of whole objects, SetModelCommissionRate; the ledger explains the balance
to the shannon; unanswered sends are settled from chain state (driver/staking.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from soma_ray.chain.sim import SimChain
from soma_ray.driver.actions import ActionStatus, CommissionPayload, StakePayload, WithdrawPayload
from soma_ray.driver.driver import Driver
from soma_ray.driver.errors import DriverRefused
from tests.chain.test_sim_models import active_model
from tests.driver.kit import chain_txs, make_driver

SOMA = 1_000_000_000


async def _driver_with_model(
    sim: SimChain, fund: Any, tmp_path: Path, *, also_created: bool = False, **settings: Any
) -> tuple[Driver, str]:
    signer = await fund(3)
    model_id, _ = await active_model(sim, signer)  # before the driver starts: its start balance follows
    if also_created:
        await sim.create_model(signer)
    driver = make_driver(sim, "http://127.0.0.1:9", signer, tmp_path, **settings)
    await driver.start()
    return driver, model_id


async def _balanced(driver: Driver) -> None:
    assert driver.ledger().expected_balance == await driver.chain.balance(driver.address)


async def test_stake_once_per_request_then_withdraw_whole_objects(sim: SimChain, fund: Any, tmp_path: Path) -> None:
    driver, model_id = await _driver_with_model(sim, fund, tmp_path)
    me = driver.address
    result = await driver.add_stake(model_id, SOMA // 2, "req-1")
    assert (result.status, result.model_id, result.amount) == (ActionStatus.DONE, model_id, SOMA // 2)
    assert result.fee > 0 and result.digest
    again = await driver.add_stake(model_id, SOMA // 2, "req-1")  # a retried request sends nothing
    assert again == result
    assert chain_txs(sim, "AddStakeToModel", me) == 1
    action = driver.state.get("stake:req-1", StakePayload)
    assert action is not None and action.payload.staked_id in {s.id for s in await sim.staked_soma(me)}
    assert driver.ledger().staked == SOMA // 2
    await _balanced(driver)

    await sim.advance_epoch()
    results = await driver.withdraw_stake(model_id)  # the create stake and the added one
    assert sorted(r.amount for r in results) == [SOMA // 2, SOMA]
    assert all(r.status == ActionStatus.DONE for r in results)
    assert await sim.staked_soma(me) == []
    assert chain_txs(sim, "WithdrawStake", me) == 2
    assert driver.ledger().unstaked == SOMA + SOMA // 2
    await _balanced(driver)
    assert await driver.withdraw_stake(model_id) == []  # nothing left to withdraw


async def test_stake_refusals_cost_nothing(sim: SimChain, fund: Any, tmp_path: Path) -> None:
    driver, model_id = await _driver_with_model(sim, fund, tmp_path)
    with pytest.raises(DriverRefused, match="positive"):
        await driver.add_stake(model_id, 0, "zero")
    with pytest.raises(DriverRefused, match="cannot stake"):
        await driver.add_stake(model_id, 10**6 * SOMA, "too-much")
    with pytest.raises(DriverRefused, match="not a StakedSoma"):
        await driver.withdraw_stake(None, ["0x" + "42" * 32])
    assert chain_txs(sim, "AddStakeToModel", driver.address, ok=None) == 0
    assert chain_txs(sim, "WithdrawStake", driver.address, ok=None) == 0
    # a chain refusal is recorded as failed and its base fee charged in the ledger
    result = await driver.add_stake("0x" + "99" * 32, SOMA // 10, "no-such-model")
    assert (result.status, result.error) == (ActionStatus.FAILED, "ModelNotFound")
    await _balanced(driver)


async def test_commission_is_staged_once_per_epoch_and_rate(sim: SimChain, fund: Any, tmp_path: Path) -> None:
    driver, model_id = await _driver_with_model(sim, fund, tmp_path, also_created=True)
    with pytest.raises(DriverRefused, match="no model yet"):
        await driver.set_commission(300)
    with pytest.raises(DriverRefused, match="above 10000"):
        await driver.set_commission(10_001, model_id)
    with pytest.raises(DriverRefused, match="negative"):
        await driver.set_commission(-1, model_id)
    [created] = [m.model_id for m in await sim.models_owned(driver.address) if m.model_id != model_id]
    with pytest.raises(DriverRefused, match="created; a commission can be set only on an Active model"):
        await driver.set_commission(300, created)
    stranger, _ = await _driver_with_model(sim, fund, tmp_path / "other")
    with pytest.raises(DriverRefused, match="owned by"):
        await stranger.set_commission(300, model_id)

    result = await driver.set_commission(300, model_id)
    assert (result.status, result.amount) == (ActionStatus.DONE, 300)
    assert await driver.set_commission(300, model_id) == result  # the same request: not sent again
    assert chain_txs(sim, "SetModelCommissionRate", driver.address) == 1
    model = await sim.get_model(model_id)
    assert (model.commission_rate, model.next_epoch_commission_rate) == (0, 300)
    await sim.advance_epoch()
    assert (await sim.get_model(model_id)).commission_rate == 300
    await _balanced(driver)


async def test_dry_run_records_and_sends_nothing(sim: SimChain, fund: Any, tmp_path: Path) -> None:
    driver, model_id = await _driver_with_model(sim, fund, tmp_path, dry_run=True)
    assert (await driver.add_stake(model_id, SOMA // 4, "dry")).status == ActionStatus.FAILED
    assert (await driver.set_commission(100, model_id)).error == "dry-run: not sent"
    assert [r.status for r in await driver.withdraw_stake(model_id)] == [ActionStatus.FAILED]
    for kind in ("AddStakeToModel", "SetModelCommissionRate", "WithdrawStake"):
        assert chain_txs(sim, kind, driver.address, ok=None) == 0


async def test_unanswered_sends_are_settled_from_the_chain(sim: SimChain, fund: Any, tmp_path: Path) -> None:
    """A crash between recording and the answer: reconciliation reads what landed."""
    driver, model_id = await _driver_with_model(sim, fund, tmp_path)
    me = driver.address
    epoch = (await sim.info()).epoch
    before = sorted(s.id for s in await sim.staked_soma(me))
    [create_stake] = before
    # landed, answers lost: a stake, a withdrawal, a commission
    driver.state.record("stake:lost", epoch, StakePayload(model_id=model_id, amount=SOMA // 8, before=before))
    await sim.add_stake_to_model(driver.signer, model_id, SOMA // 8)
    driver.state.record(f"withdraw:{create_stake}", epoch,
                        WithdrawPayload(staked_id=create_stake, model_id=model_id, principal=SOMA))
    await sim.withdraw_stake(driver.signer, create_stake)
    driver.state.record(f"commission:{model_id}:{epoch}:77", epoch, CommissionPayload(model_id=model_id, rate=77))
    await sim.set_model_commission_rate(driver.signer, model_id, 77)
    # never sent
    driver.state.record("stake:never", epoch, StakePayload(model_id=model_id, amount=SOMA // 8 + 1, before=before))

    restarted = make_driver(sim, "http://127.0.0.1:9", driver.signer, tmp_path)
    await restarted.start()
    state = restarted.state
    stake = state.get("stake:lost", StakePayload)
    assert stake is not None and stake.status == ActionStatus.DONE
    assert stake.payload.staked_id in {s.id for s in await sim.staked_soma(me)}
    assert state.get(f"withdraw:{create_stake}").status == ActionStatus.DONE  # type: ignore[union-attr]
    assert state.get(f"commission:{model_id}:{epoch}:77").status == ActionStatus.DONE  # type: ignore[union-attr]
    assert state.get("stake:never").status == ActionStatus.INTERRUPTED  # type: ignore[union-attr]
    # the fees the lost answers hid are read from the balance: the ledger explains it again
    await _balanced(restarted)
    # an interrupted request sent again lands once
    again = await restarted.add_stake(model_id, SOMA // 8 + 1, "never")
    assert again.status == ActionStatus.DONE
    await _balanced(restarted)
