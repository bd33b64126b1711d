"""The driver's staking actions: AddStakeToModel, WithdrawStake and SetModelCommissionRate (§5).

Each is recorded before it is sent and finished after, like every action (`Driver._send`); an
unanswered send is settled from chain state (`settle`):

- `stake:<request id>`: the caller's request id makes a retried request a no-op; it landed when
  a StakedSoma of ours for the model, with that principal, exists that was not there before;
- `withdraw:<staked object>`: one whole object (the protocol withdraws nothing less); it landed
  when the object is gone;
- `commission:<model>:<epoch>:<rate>`: it landed when the model stages (or, an epoch later, has)
  the rate.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from soma_ray.chain.errors import TransactionFailed
from soma_ray.chain.types import ModelStatus, TxResult
from soma_ray.driver.actions import (
    SETTLED_STATUSES,
    Action,
    ActionStatus,
    CommissionPayload,
    Payload,
    StakePayload,
    WithdrawPayload,
)
from soma_ray.driver.errors import DriverRefused
from soma_ray.driver.results import StakeResult
from soma_ray.protocol.commitments import canonical_address
from soma_ray.protocol.staking import commission_rate_error

if TYPE_CHECKING:
    from soma_ray.driver.driver import Driver

log = logging.getLogger("soma_ray.driver")
STAKE_FEE_RESERVE = 20_000  # shannons kept for the fee of the stake transaction itself


def result_of(action: Action[Payload] | None, key: str) -> StakeResult:
    if action is None:
        return StakeResult(key=key, status=ActionStatus.INTERRUPTED, model_id=None, amount=0, fee=0)
    p = action.payload
    model_id = p.model_id if isinstance(p, (StakePayload, WithdrawPayload, CommissionPayload)) else None
    amount = p.amount if isinstance(p, StakePayload) else p.principal if isinstance(p, WithdrawPayload) \
        else p.rate if isinstance(p, CommissionPayload) else 0
    return StakeResult(key=key, status=action.status, model_id=model_id, amount=amount, fee=action.fee,
                       digest=action.digest, error=action.error)


def _model_of(driver: Driver, model_id: str | None) -> str:
    chosen = model_id or driver.state.meta("model_id")
    if chosen is None:
        raise DriverRefused("this wallet has no model yet; name one with --model")
    return chosen


def _recorded(driver: Driver, key: str, epoch: int, payload: Any) -> StakeResult | None:
    """Record the action before anything is sent: None to send it, else its result (recorded
    before by an earlier call, or a dry run that sends nothing)."""
    if not driver.state.record(key, epoch, payload):
        return result_of(driver.state.get(key), key)
    if driver.settings.dry_run:
        driver.state.finish(key, ActionStatus.FAILED, error="dry-run: not sent")
        return result_of(driver.state.get(key), key)
    return None


async def add_stake(driver: Driver, model_id: str, amount: int, request_id: str) -> StakeResult:
    """Stake `amount` shannons into `model_id`'s pool, once per `request_id`."""
    key = f"stake:{request_id}"
    existing = driver.state.get(key)
    if existing is not None and existing.status in (ActionStatus.INTENDED, ActionStatus.DONE):
        return result_of(existing, key)
    if amount <= 0:
        raise DriverRefused(f"stake amount {amount} shannons: give a positive amount")
    info = await driver.chain.info()
    balance = await driver.chain.balance(driver.address)
    if balance < amount + STAKE_FEE_RESERVE:
        raise DriverRefused(f"balance {balance:,} shannons cannot stake {amount:,} plus fees; stake less or fund the wallet")
    await driver.one_coin_for(amount)
    before = sorted(s.id for s in await driver.chain.staked_soma(driver.address))
    payload = StakePayload(model_id=model_id, amount=amount, before=before)
    if (known := _recorded(driver, key, info.epoch, payload)) is not None:
        return known

    async def send() -> TxResult | None:
        try:
            tx = await driver.chain.add_stake_to_model(driver.signer, model_id, amount)
        except TransactionFailed as err:
            driver._failed(key, ActionStatus.FAILED, err.code)
            return None
        staked = [i for i in tx.created if i not in before]
        driver.state.finish(key, ActionStatus.DONE, digest=tx.digest, fee=tx.fee,
                            payload=replace(payload, staked_id=staked[0] if staked else None))
        log.info("staked %d shannons into %s", amount, model_id)
        return tx

    await driver._send(key, send)
    return result_of(driver.state.get(key), key)


async def withdraw_stake(driver: Driver, model_id: str | None, staked_ids: Sequence[str] | None) -> list[StakeResult]:
    """Withdraw our StakedSoma objects: the given ones, or every one in `model_id`'s pool."""
    ours = {s.id: s for s in await driver.chain.staked_soma(driver.address)}
    if staked_ids:
        unknown = [i for i in staked_ids if canonical_address(i) not in ours]
        if unknown:
            raise DriverRefused(f"{unknown[0]} is not a StakedSoma of {driver.address}; see `soma-ray stake list`")
        chosen = [ours[canonical_address(i)] for i in staked_ids]
        other = [s for s in chosen if model_id is not None and s.model_id != model_id]
        if other:
            raise DriverRefused(f"{other[0].id} is staked in {other[0].model_id}, not in {model_id}")
    else:
        chosen = [s for s in ours.values() if model_id is not None and s.model_id == model_id]
    results = []
    for stake in chosen:
        key = f"withdraw:{stake.id}"
        existing = driver.state.get(key)
        if existing is not None and existing.status in SETTLED_STATUSES:
            results.append(result_of(existing, key))
            continue
        payload = WithdrawPayload(staked_id=stake.id, model_id=stake.model_id, principal=stake.principal)
        if not driver.state.record(key, await driver._epoch(), payload):
            results.append(result_of(driver.state.get(key), key))
            continue
        if driver.settings.dry_run:
            driver.state.finish(key, ActionStatus.FAILED, error="dry-run: not sent")
        else:
            await driver._send(key, _withdraw_send(driver, key, stake.id))
        results.append(result_of(driver.state.get(key), key))
    return results


def _withdraw_send(driver: Driver, key: str, staked_id: str) -> Callable[[], Awaitable[TxResult | None]]:
    async def send() -> TxResult | None:
        try:
            tx = await driver.chain.withdraw_stake(driver.signer, staked_id)
        except TransactionFailed as err:
            driver._failed(key, ActionStatus.FAILED, err.code)
            return None
        driver.state.finish(key, ActionStatus.DONE, digest=tx.digest, fee=tx.fee)
        log.info("withdrew StakedSoma %s", staked_id)
        return tx

    return send


async def set_commission(driver: Driver, rate: int, model_id: str | None) -> StakeResult:
    """Stage `rate` bps as the model's commission from the next epoch (owner, Active model only)."""
    problem = commission_rate_error(rate)
    if problem is not None:
        raise DriverRefused(problem)
    model_id = _model_of(driver, model_id)
    model = await driver.chain.get_model(model_id)
    if canonical_address(model.owner) != driver.address:
        raise DriverRefused(f"model {model_id} is owned by {model.owner}, not by this wallet ({driver.address})")
    if model.status is not ModelStatus.ACTIVE:
        raise DriverRefused(f"model {model_id} is {model.status.value}; a commission can be set only on an Active model")
    epoch = await driver._epoch()
    key = f"commission:{model_id}:{epoch}:{rate}"
    payload = CommissionPayload(model_id=model_id, rate=rate)
    if (known := _recorded(driver, key, epoch, payload)) is not None:
        return known

    async def send() -> TxResult | None:
        try:
            tx = await driver.chain.set_model_commission_rate(driver.signer, model_id, rate)
        except TransactionFailed as err:
            driver._failed(key, ActionStatus.FAILED, err.code)
            return None
        driver.state.finish(key, ActionStatus.DONE, digest=tx.digest, fee=tx.fee)
        log.info("commission of %s set to %d bps from epoch %d", model_id, rate, epoch + 1)
        return tx

    await driver._send(key, send)
    return result_of(driver.state.get(key), key)


# -- settling unanswered sends ----------------------------------------------------------------


def is_staking(payload: Payload) -> bool:
    return isinstance(payload, (StakePayload, WithdrawPayload, CommissionPayload))


async def settle(driver: Driver, key: str, payload: Payload) -> None:
    """Done, or interrupted (sent again on request), from what the chain holds."""
    landed: bool
    update: Payload | None = None
    if isinstance(payload, StakePayload):
        claimed = {a.payload.staked_id for a in driver.state.actions(StakePayload, (ActionStatus.DONE,))}
        new = [s for s in await driver.chain.staked_soma(driver.address)
               if s.id not in payload.before and s.id not in claimed
               and s.model_id == payload.model_id and s.principal == payload.amount]
        landed = bool(new)
        update = replace(payload, staked_id=new[0].id) if new else None
    elif isinstance(payload, WithdrawPayload):
        landed = payload.staked_id not in {s.id for s in await driver.chain.staked_soma(driver.address)}
    elif isinstance(payload, CommissionPayload):
        model = await driver.chain.get_model(payload.model_id)
        landed = payload.rate in (model.next_epoch_commission_rate, model.commission_rate)
    else:
        raise TypeError(f"{key} is not a staking action")
    if landed:
        driver.state.finish(key, ActionStatus.DONE, payload=update)
    else:
        driver.state.finish(key, ActionStatus.INTERRUPTED, error="never landed")
