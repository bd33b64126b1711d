"""TransferCoin, PayCoins and gas smashing on the simulated network (§4.3, §13.3).

In the chain's order and with its pre-checks (authority/src/execution/coin.rs and prepare_gas.rs at
tag sdk-v0.1.15). The chain takes the base fee from the gas coin before a transaction's rules run;
the sim charges the whole fee after them (`execute.run_body`), so a pre-check that reads "the gas
coin's balance after the base fee" reads "the balance, less the base fee" here — which is what
`transaction_fee(params, writes, value_fee)` (base + writes + value) accounts for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from soma_ray.chain import errors
from soma_ray.chain.sim.store import (
    TxContext,
    delete_coin,
    get_coin,
    mint_coin,
    set_coin_balance,
    set_coin_owner,
)
from soma_ray.chain.types import Coin
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.protocol.fees import transaction_fee, transfer_value_fee


def owned_coin(conn: sqlite3.Connection, ctx: TxContext, coin_id: str) -> Coin:
    """The sender's coin `coin_id` (InputObjectDeleted / InvalidOwnership otherwise)."""
    coin = get_coin(conn, coin_id)
    if coin is None:
        raise errors.InputObjectDeleted(detail=coin_id)
    if coin.owner != ctx.sender:
        raise errors.InvalidOwnership(detail=f"{coin_id} is owned by {coin.owner}")
    return coin


def smash_gas(conn: sqlite3.Connection, ctx: TxContext, gas_coins: Sequence[str]) -> str:
    """Merge every gas coin into the first (the others are deleted); returns the first.

    A change to the gas that stands even when the transaction then fails.
    """
    primary = gas_coins[0]
    if len(gas_coins) == 1:
        return primary
    total = owned_coin(conn, ctx, primary).balance
    for other in gas_coins[1:]:
        total += owned_coin(conn, ctx, other).balance
        delete_coin(conn, ctx, other)
    set_coin_balance(conn, ctx, primary, total)
    return primary


def transfer_coin(
    conn: sqlite3.Connection,
    ctx: TxContext,
    state: dict[str, Any],
    params: ProtocolParams,
    gas_coin: str,
    *,
    coin_id: str,
    amount: int | None,
    recipient: str,
) -> None:
    """`TransferCoin{coin, amount, recipient}`: a split into a new coin, or the whole coin.

    The whole of a non-gas coin changes owner; the whole of the gas coin moves into a new coin
    less the fees (the gas coin keeps exactly the fees and is then deleted).
    """
    coin = owned_coin(conn, ctx, coin_id)
    is_gas = coin_id == gas_coin
    ctx.value_fee += transfer_value_fee(coin.balance if amount is None else amount, state["value_fee_bps"])
    if amount is not None:
        if is_gas:
            needed = amount + transaction_fee(params, 2, ctx.value_fee)  # the new coin and the gas coin
            if coin.balance < needed:
                raise errors.InsufficientCoinBalance(detail=f"transferring {amount} plus fees needs {needed}, the coin holds {coin.balance}")
        elif coin.balance < amount:
            raise errors.InsufficientCoinBalance(detail=f"transferring {amount}, the coin holds {coin.balance}")
        if amount == coin.balance and not is_gas:
            set_coin_owner(conn, ctx, coin_id, recipient)
            return
        mint_coin(conn, ctx, recipient, amount)
        set_coin_balance(conn, ctx, coin_id, coin.balance - amount)
        return
    if not is_gas:
        set_coin_owner(conn, ctx, coin_id, recipient)
        return
    keep = transaction_fee(params, 2, ctx.value_fee)
    if coin.balance <= keep:
        raise errors.InsufficientCoinBalance(detail=f"the gas coin holds {coin.balance}, the fees alone are {keep}")
    mint_coin(conn, ctx, recipient, coin.balance - keep)
    set_coin_balance(conn, ctx, coin_id, keep)


def pay_coins(
    conn: sqlite3.Connection,
    ctx: TxContext,
    state: dict[str, Any],
    params: ProtocolParams,
    gas_coin: str,
    *,
    coins: Sequence[str],
    amounts: Sequence[int] | None,
    recipients: Sequence[str],
) -> None:
    """`PayCoins{coins, amounts, recipients}`: one new coin per recipient, paid from `coins`.

    With amounts, what is left stays in the gas coin if it is one of `coins` (else in the first of
    them) and the other coins are deleted. Without amounts, everything goes to the one recipient:
    into a new coin less the fees when the gas coin pays, else by merging the coins into the first
    and handing it over.
    """
    bps = state["value_fee_bps"]
    if amounts is not None:
        ctx.value_fee += transfer_value_fee(sum(amounts), bps)
    else:
        ctx.value_fee += transfer_value_fee(sum(c.balance for c in _live(conn, ctx, coins)), bps)
    if not coins:
        raise errors.InvalidArguments(detail="Must provide at least one coin")
    if not recipients:
        raise errors.InvalidArguments(detail="Must provide at least one recipient")
    has_gas = gas_coin in coins
    if amounts is not None:
        if len(amounts) != len(recipients):
            raise errors.InvalidArguments(
                detail=f"Amounts and recipients must match. Got {len(amounts)} amounts and {len(recipients)} recipients"
            )
        available = [owned_coin(conn, ctx, c) for c in _live_ids(ctx, coins)]
        total_available = sum(c.balance for c in available)
        total = sum(amounts)
        # the fees still owed: a write per recipient and the coin keeping the rest, and the value fee
        needed = total + transaction_fee(params, 1 + len(recipients), ctx.value_fee)
        if not has_gas:
            needed -= params.base_fee  # the base fee is the gas coin's, not these coins'
        if total_available < needed:
            raise errors.InsufficientCoinBalance(
                detail=f"paying {total} plus fees needs {needed}, the coins hold {total_available}"
            )
        for recipient, amount in zip(recipients, amounts, strict=True):
            mint_coin(conn, ctx, recipient, amount)
        keeper = gas_coin if has_gas else available[0].id
        set_coin_balance(conn, ctx, keeper, total_available - total)
        for coin in available:
            if coin.id != keeper:
                delete_coin(conn, ctx, coin.id)
        return
    if len(recipients) != 1:
        raise errors.InvalidArguments(detail="Pay-all operation only supports a single recipient")
    (recipient,) = recipients
    live = [owned_coin(conn, ctx, c) for c in _live_ids(ctx, coins)]
    if has_gas:
        total_available = sum(c.balance for c in live)
        keep = transaction_fee(params, 2, ctx.value_fee)
        if total_available <= keep:
            raise errors.InsufficientCoinBalance(detail=f"the coins hold {total_available}, the fees alone are {keep}")
        mint_coin(conn, ctx, recipient, total_available - keep)
        set_coin_balance(conn, ctx, gas_coin, keep)
        for coin in live:
            if coin.id != gas_coin:
                delete_coin(conn, ctx, coin.id)
        return
    first, others = live[0], live[1:]
    for coin in others:
        delete_coin(conn, ctx, coin.id)
    if others:
        set_coin_balance(conn, ctx, first.id, first.balance + sum(c.balance for c in others))
    set_coin_owner(conn, ctx, first.id, recipient)


def _live_ids(ctx: TxContext, coins: Sequence[str]) -> list[str]:
    """`coins` without those this transaction already deleted (gas coins merged by `smash_gas`)."""
    seen: list[str] = []
    for coin_id in coins:
        if coin_id not in ctx.deleted and coin_id not in seen:
            seen.append(coin_id)
    return seen


def _live(conn: sqlite3.Connection, ctx: TxContext, coins: Sequence[str]) -> list[Coin]:
    found = [get_coin(conn, c) for c in _live_ids(ctx, coins)]
    return [c for c in found if c is not None]
