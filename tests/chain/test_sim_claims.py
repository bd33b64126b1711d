"""ClaimRewards and target listing on the simulated network (protocol.md §3.4, §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import base58
import numpy as np
import pytest
from soma_sdk import Keypair

from soma_ray.chain import errors
from soma_ray.chain.sim import SimChain
from soma_ray.chain.sim.genesis import genesis_owner
from soma_ray.chain.types import Target
from soma_ray.protocol.commitments import canonical_address, derive_id
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.protocol.rewards import split_filled

BASE_FEE = 1000
WRITE_FEE = 300
DATA = b"claim me " * 20


async def fill(sim: SimChain, kp: Keypair, target: Target, model_index: int = 0) -> Any:
    return await sim.submit_data(
        kp, target.id, data=DATA, data_url="http://127.0.0.1:9200/data/c.bin",
        model_id=target.model_ids[model_index], embedding=np.zeros(target.embedding.size, np.float32),
        distance_score=0.3, loss_score=[2.0],
    )


def claim_value_fee(reward: int, value_fee_bps: int) -> int:
    return reward * (value_fee_bps // 2) // 10_000


async def coin_map(sim: SimChain, address: str) -> dict[str, int]:
    return {c.id: c.balance for c in await sim.coins(address)}


async def charged(sim: SimChain, kp: Keypair, exc: type[Exception], call: Any) -> Exception:
    before = await sim.balance(kp.address())
    with pytest.raises(exc) as raised:
        await call()
    assert type(raised.value) is exc
    assert await sim.balance(kp.address()) == before - BASE_FEE
    return raised.value


@dataclass
class Filled:
    target: Target
    submitter: Keypair
    model_owner: str


@pytest.fixture
async def filled(sim: SimChain, fund: Any) -> Filled:
    submitter = await fund(1)
    target = (await sim.list_targets("open")).targets[0]
    await fill(sim, submitter, target, model_index=1)
    model = await sim.get_model(target.model_ids[1])
    return Filled(await sim.get_target(target.id), submitter, model.owner)


async def test_audit_window_then_exact_payout_to_the_submitter_as_claimer(sim: SimChain, filled: Filled) -> None:
    kp, target = filled.submitter, filled.target
    assert target.fill_epoch == 0
    err = await charged(sim, kp, errors.AuditWindowOpen, lambda: sim.claim_rewards(kp, target.id))
    assert "filled in epoch 0" in str(err)
    await sim.advance_epoch()  # fill_epoch + 1: validators may still report
    await charged(sim, kp, errors.AuditWindowOpen, lambda: sim.claim_rewards(kp, target.id))
    assert (await sim.get_target(target.id)).status == "filled"
    await sim.advance_epoch()  # fill_epoch + 2

    info = await sim.info()
    owner_coins = await coin_map(sim, filled.model_owner)
    mine = await coin_map(sim, kp.address())
    tx = await sim.claim_rewards(kp, target.id)

    reward = target.reward_pool
    model_share = reward * 4975 // 10_000
    claimer_share = reward * 50 // 10_000
    submitter_share = reward - model_share - claimer_share
    assert split_filled(reward, ProtocolParams()).submitter == submitter_share
    bond = 65 * len(DATA)
    assert target.bond_amount == bond
    # four new coins, never merged: submitter, model owner, claimer, bond (in that order)
    assert len(tx.created) == 4
    digest = base58.b58decode(tx.digest)
    assert tx.created == [derive_id(digest, n) for n in range(4)]  # creation numbers 0..3 in order
    assert tx.deleted == [target.id]
    fee = BASE_FEE + WRITE_FEE * (2 + 4) + claim_value_fee(reward, info.value_fee_bps)
    assert tx.fee == fee
    after = await coin_map(sim, kp.address())
    new_mine = {cid: bal for cid, bal in after.items() if cid not in mine}
    assert sorted(new_mine.values()) == sorted([submitter_share, claimer_share, bond])
    assert [after[cid] for cid in (tx.created[0], tx.created[2], tx.created[3])] == [
        submitter_share, claimer_share, bond,
    ]
    # the gas coin paid the fee
    assert sum(after.values()) == sum(mine.values()) - fee + submitter_share + claimer_share + bond
    owner_after = await coin_map(sim, filled.model_owner)
    assert {c: b for c, b in owner_after.items() if c not in owner_coins} == {tx.created[1]: model_share}

    # the target is deleted: a second claim is not executed and not charged
    balance = await sim.balance(kp.address())
    with pytest.raises(errors.ObjectNotFound):
        await sim.claim_rewards(kp, target.id)
    assert await sim.balance(kp.address()) == balance
    with pytest.raises(errors.ObjectNotFound):
        await sim.get_target(target.id)
    assert target.id not in {t.id for t in await sim.all_targets()}


async def test_third_party_claim_earns_the_claimer_share(sim: SimChain, fund: Any, filled: Filled) -> None:
    target = filled.target
    await sim.advance_epoch()
    await sim.advance_epoch()
    claimer = await fund(1)
    sub_before = await coin_map(sim, filled.submitter.address())
    claimer_before = await sim.balance(claimer.address())
    owner_before = await sim.balance(filled.model_owner)
    value_bps = (await sim.info()).value_fee_bps

    tx = await sim.claim_rewards(claimer, target.id)

    reward = target.reward_pool
    split = split_filled(reward, ProtocolParams())
    fee = BASE_FEE + WRITE_FEE * 6 + claim_value_fee(reward, value_bps)
    assert tx.fee == fee
    assert await sim.balance(claimer.address()) == claimer_before - fee + split.claimer
    assert await sim.balance(filled.model_owner) == owner_before + split.model_owner
    sub_after = await coin_map(sim, filled.submitter.address())
    new = sorted(b for c, b in sub_after.items() if c not in sub_before)
    assert new == sorted([split.submitter, target.bond_amount])  # the submitter paid nothing
    assert {c: sub_after[c] for c in sub_before} == sub_before


async def test_model_owner_is_captured_at_fill_time(sim: SimChain, fund: Any, filled: Filled) -> None:
    """Deactivating the winning model afterwards does not move or cancel its owner's share."""
    owner = genesis_owner()
    assert filled.model_owner == canonical_address(owner.address())
    await sim.faucet(owner.address())
    await sim.deactivate_model(owner, filled.target.winning_model_id)  # type: ignore[arg-type]
    await sim.advance_epoch()
    await sim.advance_epoch()
    before = await sim.balance(owner.address())
    await sim.claim_rewards(filled.submitter, filled.target.id)
    assert await sim.balance(owner.address()) == before + split_filled(
        filled.target.reward_pool, ProtocolParams()
    ).model_owner


async def test_expired_unfilled_target_returns_to_the_pool(sim: SimChain, fund: Any) -> None:
    kp = await fund(1)
    target = (await sim.list_targets("open")).targets[0]
    await charged(sim, kp, errors.TargetNotFilled, lambda: sim.claim_rewards(kp, target.id))
    await sim.advance_epoch()
    assert (await sim.get_target(target.id)).status == "claimable"  # expired shows as claimable
    info = await sim.info()
    balance = await sim.balance(kp.address())
    tx = await sim.claim_rewards(kp, target.id)
    reward = target.reward_pool
    claimer_share = reward * 50 // 10_000
    fee = BASE_FEE + WRITE_FEE * 3 + claim_value_fee(reward, info.value_fee_bps)  # gas, state, 1 coin
    assert tx.fee == fee
    assert tx.created == [derive_id(base58.b58decode(tx.digest), 0)]
    assert await sim.balance(kp.address()) == balance - fee + claimer_share
    assert (await sim.info()).emission_pool_balance == info.emission_pool_balance + reward - claimer_share
    with pytest.raises(errors.ObjectNotFound):
        await sim.get_target(target.id)


# -- listing ------------------------------------------------------------------------------------------


@pytest.fixture
async def three_epochs(sim: SimChain, fund: Any) -> dict[str, Any]:
    """Epoch 2 with: A filled in epoch 0 (claimable), B filled in epoch 1 (in audit), expired
    targets from epochs 0 and 1, and open targets of epoch 2."""
    kp = await fund(2)
    a = (await sim.list_targets("open")).targets[0]
    await fill(sim, kp, a)
    await sim.advance_epoch()
    b = (await sim.list_targets("open")).targets[0]
    await fill(sim, kp, b)
    await sim.advance_epoch()
    return {"a": a.id, "b": b.id, "kp": kp}


async def test_status_filters(sim: SimChain, three_epochs: dict[str, Any]) -> None:
    a, b = three_epochs["a"], three_epochs["b"]
    everything = await sim.all_targets()
    by_id = {t.id: t for t in everything}
    assert len(by_id) == len(everything)

    open_ = await sim.all_targets("open")
    assert open_ and all(t.generation_epoch == 2 and t.status == "open" for t in open_)
    assert {t.id for t in open_} == {t.id for t in everything if t.submitter is None and t.generation_epoch == 2}

    filled = {t.id: t for t in await sim.all_targets("filled")}
    assert set(filled) == {a, b}
    assert filled[a].status == "claimable"  # past its audit window, even under "filled"
    assert filled[b].status == "filled"
    assert (filled[a].fill_epoch, filled[b].fill_epoch) == (0, 1)

    expired = await sim.all_targets("expired")
    assert expired and all(t.submitter is None and t.generation_epoch < 2 for t in expired)
    assert all(t.status == "claimable" for t in expired)  # "expired" is never displayed
    assert {t.id for t in expired} == {
        t.id for t in everything if t.submitter is None and t.generation_epoch < 2
    }

    claimable = {t.id for t in await sim.all_targets("claimable")}
    assert claimable == {t.id for t in expired} | {a}
    assert b not in claimable
    assert await sim.all_targets("claimed") == []
    assert {t.id for t in open_} | claimable | {b} == set(by_id)

    with pytest.raises((ValueError, errors.ChainError), match="bogus"):
        await sim.list_targets("bogus")


async def test_epoch_and_submitter_filters(sim: SimChain, three_epochs: dict[str, Any]) -> None:
    kp = three_epochs["kp"]
    mine = await sim.all_targets("filled", submitter=kp.address())
    assert {t.id for t in mine} == {three_epochs["a"], three_epochs["b"]}
    assert await sim.all_targets("filled", submitter=Keypair.generate().address()) == []
    for epoch in (0, 1, 2):
        listed = await sim.all_targets(epoch=epoch)
        assert listed and all(t.generation_epoch == epoch for t in listed)
    expired_1 = await sim.all_targets("expired", epoch=1)
    assert expired_1 and all(t.generation_epoch == 1 and t.submitter is None for t in expired_1)


async def test_claimable_targets_can_all_be_claimed(sim: SimChain, fund: Any, three_epochs: dict[str, Any]) -> None:
    claimer = await fund(1)
    for target in await sim.all_targets("claimable"):
        await sim.claim_rewards(claimer, target.id)
    assert await sim.all_targets("claimable") == []
    assert await sim.all_targets("expired") == []
    # B is still in its audit window
    with pytest.raises(errors.AuditWindowOpen):
        await sim.claim_rewards(claimer, three_epochs["b"])


@pytest.mark.parametrize("page_size", [1, 3, 7, 1000])
async def test_pagination_returns_each_target_once(
    sim: SimChain, three_epochs: dict[str, Any], page_size: int
) -> None:
    for status in (None, "open", "claimable", "expired", "filled"):
        one_page = await sim.list_targets(status, limit=1000)
        assert one_page.next_page_token is None
        ids = [t.id async for t in sim.iter_targets(status, page_size=page_size)]
        assert len(ids) == len(set(ids))
        assert ids == [t.id for t in one_page.targets]


async def test_page_tokens(sim: SimChain, three_epochs: dict[str, Any]) -> None:
    total = len(await sim.all_targets("claimable"))
    assert total > 6
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = await sim.list_targets("claimable", limit=3, page_token=token)
        pages += 1
        assert len(page.targets) <= 3
        if page.next_page_token:
            assert len(page.targets) == 3
        seen += [t.id for t in page.targets]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == total
    assert pages == -(-total // 3)  # no trailing empty page
