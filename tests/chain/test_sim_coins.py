"""PayCoins and MergeCoins on the simulated network (protocol.md §4.3: value fee, pre-checks)."""

from __future__ import annotations

from typing import Any

import base58
import pytest
from soma_sdk import Keypair

from soma_ray.chain import errors
from soma_ray.chain.sim import SimChain
from soma_ray.protocol.commitments import derive_id

SOMA = 1_000_000_000
BASE_FEE = 1000
WRITE_FEE = 300


async def test_pay_coins_fee_and_new_coin_ids(sim: SimChain, fund: Any) -> None:
    kp = await fund(1)
    a, b = Keypair.generate(), Keypair.generate()
    tx = await sim.pay_coins(kp, [a.address(), b.address()], [999, 999])
    # value fee is bps_mul of the *total* (1998 * 10 // 10000 = 1), not a sum of per-coin floors (0)
    assert tx.fee == BASE_FEE + WRITE_FEE * 3 + 1
    digest = base58.b58decode(tx.digest)
    assert tx.created == [derive_id(digest, 0), derive_id(digest, 1)]
    assert [c.id for c in await sim.coins(a.address())] == [derive_id(digest, 0)]
    assert await sim.balance(b.address()) == 999
    assert await sim.balance(kp.address()) == 2 * SOMA - 1998 - tx.fee


def _largest_payable(balance: int) -> int:
    """The largest single payment a gas coin of `balance` covers with base, write and value fees."""
    def fits(amount: int) -> bool:
        return amount + BASE_FEE + 2 * WRITE_FEE + amount * 10 // 10_000 <= balance

    lo, hi = 0, balance
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


async def test_pay_coins_precheck_counts_the_fees(sim: SimChain, fund: Any) -> None:
    kp = await fund(1)
    other = Keypair.generate().address()
    with pytest.raises(errors.InsufficientCoinBalance):
        await sim.pay_coins(kp, [other], [_largest_payable(2 * SOMA) + 1])
    rest = 2 * SOMA - BASE_FEE
    assert await sim.balance(kp.address()) == rest
    amount = _largest_payable(rest)
    tx = await sim.pay_coins(kp, [other], [amount])
    assert tx.fee == BASE_FEE + 2 * WRITE_FEE + amount * 10 // 10_000
    assert await sim.balance(other) == amount
    assert await sim.balance(kp.address()) == rest - amount - tx.fee


async def test_merge_coins(sim: SimChain, fund: Any) -> None:
    kp = await fund(3)
    coins = await sim.coins(kp.address())
    tx = await sim.merge_coins(kp)
    assert sorted(tx.deleted) == sorted(c.id for c in coins if c.id not in tx.mutated)
    [merged] = await sim.coins(kp.address())
    assert merged.balance == 6 * SOMA - tx.fee
