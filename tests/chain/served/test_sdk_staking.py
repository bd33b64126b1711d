"""Staking through the unmodified soma-sdk client and our `SdkChain` on the served network:
`withdraw_stake` and `set_model_commission_rate` execute there with the sim's rules and fees
(protocol.md §5, §4.3, §13.3), and `SdkChain.staked_soma` reads what `SimChain` holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import pytest
from soma_sdk import Keypair, SomaClient

from soma_ray.chain import errors
from soma_ray.chain.sdk import SdkChain
from soma_ray.chain.served import LocalnetServer
from soma_ray.chain.sim import SimChain
from soma_ray.protocol.fees import withdraw_value_fee
from tests.chain.served.kit import addr, shannons
from tests.chain.test_sim_models import active_model

T = TypeVar("T")
SOMA = 1_000_000_000


async def within(call: Awaitable[T]) -> T:
    return await asyncio.wait_for(call, 60)


@pytest.fixture
async def sdk(localnet: LocalnetServer) -> AsyncIterator[SdkChain]:
    urls = localnet.urls
    chain = await SdkChain.connect(rpc_url=urls.rpc_url, faucet_url=urls.faucet_url, admin_url=urls.admin_url)
    yield chain
    await chain.close()


def sim_of(server: LocalnetServer) -> SimChain:
    assert isinstance(server.sim, SimChain)
    return server.sim


def _field(obj: Any, name: str) -> Any:
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


def fee_of(effects: Any) -> tuple[int, int, int]:
    fee = effects.V1.transaction_fee
    return int(fee.base_fee), int(fee.operation_fee), int(fee.value_fee)


async def test_withdraw_and_commission_through_the_unmodified_client(localnet: LocalnetServer, client: SomaClient) -> None:
    sim = sim_of(localnet)
    kp, stranger = Keypair.generate(), Keypair.generate()
    for _ in range(3):
        await sim.faucet(kp.address())
    await sim.faucet(stranger.address())
    model_id, _ = await active_model(sim, kp)
    await within(client.merge_coins(kp))
    await within(client.add_stake_to_model(kp, model_id, 0.5))
    await within(client.advance_epoch())
    info = await sim.info()
    params, bps = info.params, info.value_fee_bps
    refs = await client.list_owned_objects(kp.address(), object_type="staked_soma")
    assert len(refs) == 2
    [added] = [s for s in await sim.staked_soma(kp.address()) if s.principal == shannons(0.5)]

    # someone else's StakedSoma: refused by the node before execution, nothing charged
    before = await sim.balance(stranger.address())
    with pytest.raises(RuntimeError, match="owned by"):
        await within(client.withdraw_stake(stranger, added.id))
    assert await sim.balance(stranger.address()) == before

    balance = await sim.balance(kp.address())
    effects = await within(client.withdraw_stake(kp, added.id))
    assert effects.V1.status == "Success"
    # a new coin, the gas coin and the system state written; half the value fee on the principal
    assert fee_of(effects) == (params.base_fee, 3 * params.write_object_fee, withdraw_value_fee(added.principal, bps))
    assert await sim.balance(kp.address()) == balance + added.principal - sum(fee_of(effects))
    with pytest.raises(RuntimeError, match="NotFound"):
        await client.get_object(added.id)
    assert len(await client.list_owned_objects(kp.address(), object_type="staked_soma")) == 1
    # the pool shows the withdrawal pending until the epoch ends (§5)
    state = await client.get_latest_system_state()
    entry = vars(state.model_registry.models)[model_id]
    pool = _field(_field(_field(entry, "V1"), "Active"), "staking_pool")
    assert _field(pool, "pending_total_soma_withdraw") == added.principal
    [listed] = [m for m in await client.get_active_models() if m.model_id == model_id]
    assert shannons(listed.stake) == SOMA + added.principal

    # commission: staged for the next epoch; out of range refused on chain (base fee)
    effects = await within(client.set_model_commission_rate(kp, model_id, 300))
    assert fee_of(effects) == (params.base_fee, 2 * params.write_object_fee, 0)
    [listed] = [m for m in await client.get_active_models() if m.model_id == model_id]
    assert (listed.commission_rate, listed.next_epoch_commission_rate) == (0, 300)
    balance = await sim.balance(kp.address())
    with pytest.raises(RuntimeError, match=r"ModelCommissionRateTooHigh"):
        await within(client.set_model_commission_rate(kp, model_id, 10_001))
    assert await sim.balance(kp.address()) == balance - params.base_fee
    await within(client.advance_epoch())
    [listed] = [m for m in await client.get_active_models() if m.model_id == model_id]
    assert (listed.commission_rate, shannons(listed.stake)) == (300, SOMA)


async def test_sdk_chain_reads_stakes_and_signs_staking_transactions(localnet: LocalnetServer, sdk: SdkChain) -> None:
    sim = sim_of(localnet)
    owner, backer = Keypair.generate(), Keypair.generate()
    for _ in range(2):
        await sim.faucet(owner.address())
    await sim.faucet(backer.address())
    model_id, _ = await active_model(sim, owner)
    await within(sdk.add_stake_to_model(backer, model_id, SOMA // 4))
    assert await sdk.staked_soma(backer.address()) == await sim.staked_soma(backer.address())
    assert await sdk.staked_soma(owner.address()) == await sim.staked_soma(owner.address())
    [stake] = await sdk.staked_soma(backer.address())
    assert (stake.model_id, stake.principal, stake.owner) == (model_id, SOMA // 4, addr(backer.address()))

    balance = await sim.balance(backer.address())
    tx = await within(sdk.withdraw_stake(backer, stake.id))
    assert tx.ok and stake.id in tx.deleted
    assert await sim.balance(backer.address()) == balance + stake.principal - tx.fee
    assert await sdk.staked_soma(backer.address()) == []
    with pytest.raises(errors.ObjectNotFound):  # gone: the client cannot fetch it
        await within(sdk.withdraw_stake(backer, stake.id))

    tx = await within(sdk.set_model_commission_rate(owner, model_id, 1234))
    assert tx.ok
    model = await sdk.get_model(model_id)
    assert (model.commission_rate, model.next_epoch_commission_rate) == (0, 1234)
    held = await sim.get_model(model_id)
    assert (held.commission_rate, held.next_epoch_commission_rate, held.stake) == (0, 1234, model.stake)
    with pytest.raises(errors.ModelCommissionRateTooHigh):
        await within(sdk.set_model_commission_rate(owner, model_id, 10_001))
    with pytest.raises(errors.NotModelOwner):
        await within(sdk.set_model_commission_rate(backer, model_id, 5))
