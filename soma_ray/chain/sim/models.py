"""Model transactions and the epoch-boundary model rules on the simulated network (§5).

Check orders follow the chain's executors (types/src/system_state/mod.rs at the pinned commit).
Models and their staking pools live inside the shared SystemState object, so a model change
writes that one object.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from soma_ray.chain import errors
from soma_ray.chain.sim.store import (
    SYSTEM_STATE_ID,
    TxContext,
    delete_coin,
    delete_object,
    f32_blob,
    get_coin,
    mint_coin,
    set_coin_balance,
)
from soma_ray.protocol.commitments import commitment, decryption_key_commitment, embedding_commitment
from soma_ray.protocol.constants import MAX_COMMISSION_BPS, ProtocolParams
from soma_ray.protocol.fees import stake_value_fee, transaction_fee, withdraw_value_fee
from soma_ray.protocol.slashing import after_missed_deadline
from soma_ray.protocol.staking import WithdrawEffect, withdraw_effect, withdrawn_amount
from soma_ray.protocol.windows import commit_missed, reveal_epoch, reveal_missed, stake_activation_epoch

ZERO_KEY_B58 = "1" * 32  # base58 of DecryptionKey::new([0u8; 32])


def _model_row(conn: sqlite3.Connection, model_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute("SELECT * FROM models WHERE id = ?", (model_id,)).fetchone()
    if row is None:
        raise errors.ModelNotFound(detail=model_id)
    return row


def _require_owner(ctx: TxContext, row: sqlite3.Row) -> None:
    if row["owner"] != ctx.sender:
        raise errors.NotModelOwner(detail=row["id"])


def _take_from_gas(
    conn: sqlite3.Connection, ctx: TxContext, params: ProtocolParams, gas_coin: str, amount: int, writes: int
) -> None:
    """Stake paid from the gas coin must leave enough for the fees still owed (executor pre-check)."""
    coin = get_coin(conn, gas_coin)
    needed = amount + transaction_fee(params, writes, ctx.value_fee)
    if coin is None or coin.balance < needed:
        raise errors.InsufficientCoinBalance(
            detail=f"gas coin holds {coin.balance if coin else 0}, needs {needed} (amount plus fees)"
        )
    set_coin_balance(conn, ctx, gas_coin, coin.balance - amount)


def _mint_staked_soma(conn: sqlite3.Connection, staked_id: str, owner: str, model_id: str, amount: int, epoch: int) -> None:
    conn.execute(
        "INSERT INTO staked (id, owner, model_id, amount, stake_epoch) VALUES (?, ?, ?, ?, ?)",
        (staked_id, owner, model_id, amount, stake_activation_epoch(epoch)),
    )


def create_model(
    conn: sqlite3.Connection,
    ctx: TxContext,
    state: dict[str, Any],
    params: ProtocolParams,
    gas_coin: str,
    *,
    stake: int,
    commission_rate: int,
    architecture_version: int,
) -> str:
    if architecture_version != params.model_architecture_version:
        raise errors.ModelArchitectureVersionMismatch(
            detail=f"expected {params.model_architecture_version}, got {architecture_version}"
        )
    if stake < params.model_min_stake:
        raise errors.ModelMinStakeNotMet(detail=f"stake {stake} < min {params.model_min_stake}")
    if commission_rate > MAX_COMMISSION_BPS:
        raise errors.ModelCommissionRateTooHigh(detail=f"{commission_rate} bps > {MAX_COMMISSION_BPS}")
    ctx.value_fee += stake_value_fee(stake, state["value_fee_bps"])
    _take_from_gas(conn, ctx, params, gas_coin, stake, writes=3)
    model_id = ctx.derive_id()  # derive_id(digest, 0); lives inside SystemState
    ctx.derive_id()  # the staking pool id, derive_id(digest, 1)
    conn.execute(
        "INSERT INTO models (id, owner, status, create_epoch, stake, pool_active, commission_rate,"
        " next_commission_rate) VALUES (?, ?, 'created', ?, ?, 1, ?, ?)",
        (model_id, ctx.sender, state["epoch"], stake, commission_rate, commission_rate),
    )
    _mint_staked_soma(conn, ctx.new_object_id(), ctx.sender, model_id, stake, state["epoch"])
    ctx.touch(SYSTEM_STATE_ID)
    return model_id


def commit_model(
    conn: sqlite3.Connection,
    ctx: TxContext,
    state: dict[str, Any],
    *,
    model_id: str,
    weights_url: str,
    encrypted_weights: bytes,
    decryption_key: str,
    embedding: Any,
) -> None:
    """Only commitments reach the chain; the key itself stays with the trainer until reveal."""
    commit_commitments(
        conn,
        ctx,
        state,
        model_id=model_id,
        weights_url=weights_url,
        checksum=commitment(encrypted_weights),
        size=len(encrypted_weights),
        weights_commitment=commitment(encrypted_weights),
        embedding_commitment=embedding_commitment(embedding),
        decryption_key_commitment=decryption_key_commitment(decryption_key),
    )


def commit_commitments(
    conn: sqlite3.Connection,
    ctx: TxContext,
    state: dict[str, Any],
    *,
    model_id: str,
    weights_url: str,
    checksum: str,
    size: int,
    weights_commitment: str,
    embedding_commitment: str,
    decryption_key_commitment: str,
) -> None:
    """CommitModel as it travels (§5, §2.3): a manifest and three commitments (base58 digests)."""
    row = _model_row(conn, model_id)
    if row["status"] not in ("created", "active"):
        raise errors.ModelInvalidState(detail=f"cannot commit a {row['status']} model")
    _require_owner(ctx, row)
    commit = json.dumps(
        {
            "url": weights_url,
            "checksum": checksum,
            "size": size,
            "weights": weights_commitment,
            "embedding": embedding_commitment,
            "decryption_key": decryption_key_commitment,
            "commit_epoch": state["epoch"],
        },
        sort_keys=True,
    )
    if row["status"] == "created":
        conn.execute(
            "UPDATE models SET status = 'pending', commit_epoch = ?, commitments = ? WHERE id = ?",
            (state["epoch"], commit, model_id),
        )
    else:  # an update: the latest commit of the epoch overwrites an earlier pending one
        conn.execute("UPDATE models SET pending_update = ? WHERE id = ?", (commit, model_id))
    ctx.touch(SYSTEM_STATE_ID)


def reveal_model(
    conn: sqlite3.Connection,
    ctx: TxContext,
    state: dict[str, Any],
    *,
    model_id: str,
    decryption_key: str,
    embedding: Any,
) -> None:
    row = _model_row(conn, model_id)
    if row["status"] not in ("pending", "active"):
        raise errors.ModelInvalidState(detail=f"nothing to reveal on a {row['status']} model")
    _require_owner(ctx, row)
    if row["status"] == "active" and not row["pending_update"]:
        raise errors.ModelNoPendingUpdate(detail=model_id)
    commit = json.loads(row["commitments"] if row["status"] == "pending" else row["pending_update"])
    if state["epoch"] != reveal_epoch(commit["commit_epoch"]):
        raise errors.ModelRevealEpochMismatch(
            detail=f"committed in epoch {commit['commit_epoch']}, reveal only in "
            f"{reveal_epoch(commit['commit_epoch'])}, now {state['epoch']}"
        )
    try:
        key_ok = decryption_key_commitment(decryption_key) == commit["decryption_key"]
    except ValueError:
        key_ok = False
    if not key_ok:
        raise errors.ModelDecryptionKeyCommitmentMismatch(detail=model_id)
    if embedding_commitment(embedding) != commit["embedding"]:
        raise errors.ModelEmbeddingCommitmentMismatch(detail=model_id)
    if row["status"] == "pending":
        conn.execute(
            "UPDATE models SET status = 'active', activation_epoch = ?, decryption_key = ?, embedding = ?"
            " WHERE id = ?",
            (state["epoch"], decryption_key, f32_blob(embedding), model_id),
        )
    else:  # update reveal: weights, key and embedding replaced in place, mid-epoch (§5)
        conn.execute(
            "UPDATE models SET commitments = ?, decryption_key = ?, embedding = ?, pending_update = NULL"
            " WHERE id = ?",
            (json.dumps(commit, sort_keys=True), decryption_key, f32_blob(embedding), model_id),
        )
    ctx.touch(SYSTEM_STATE_ID)


def add_stake(
    conn: sqlite3.Connection,
    ctx: TxContext,
    state: dict[str, Any],
    params: ProtocolParams,
    gas_coin: str,
    *,
    model_id: str,
    amount: int | None,
    coin: str | None = None,
) -> None:
    """AddStakeToModel: `amount` from `coin` (the gas coin when None); `amount=None` stakes the
    whole coin (a coin other than the gas coin)."""
    coin_id = gas_coin if coin is None else coin
    source = get_coin(conn, coin_id)
    if source is None or source.owner != ctx.sender:
        raise errors.InvalidOwnership(detail=f"{coin_id} is not a coin of {ctx.sender}")
    if amount is None and coin_id == gas_coin:
        raise errors.InvalidArguments(
            detail="the simulated network cannot stake the whole gas coin: name an amount or another coin"
        )
    stake = source.balance if amount is None else amount
    ctx.value_fee += stake_value_fee(stake, state["value_fee_bps"])
    if coin_id == gas_coin:
        _take_from_gas(conn, ctx, params, gas_coin, stake, writes=2)
    else:
        if source.balance < stake:
            raise errors.InsufficientCoinBalance(detail=f"coin {coin_id} holds {source.balance}, staking {stake}")
        if stake == source.balance:
            delete_coin(conn, ctx, coin_id)
        else:
            set_coin_balance(conn, ctx, coin_id, source.balance - stake)
    if stake <= 0:
        raise errors.InvalidArguments(detail="stake amount must be positive")
    row = _model_row(conn, model_id)
    if row["status"] == "inactive":
        raise errors.ModelAlreadyInactive(detail=model_id)
    # Pre-active pools process stake at once; an active model's stake moves at the epoch boundary.
    column = "pending_stake" if row["status"] == "active" else "stake"
    conn.execute(f"UPDATE models SET {column} = {column} + ? WHERE id = ?", (stake, model_id))
    _mint_staked_soma(conn, ctx.new_object_id(), ctx.sender, model_id, stake, state["epoch"])
    ctx.touch(SYSTEM_STATE_ID)


def set_commission_rate(conn: sqlite3.Connection, ctx: TxContext, *, model_id: str, new_rate: int) -> None:
    """SetModelCommissionRate: staged to the next epoch; owner of an active model only (§5)."""
    if new_rate > MAX_COMMISSION_BPS:
        raise errors.ModelCommissionRateTooHigh(detail=f"{new_rate} bps > {MAX_COMMISSION_BPS}")
    row = _model_row(conn, model_id)
    if row["status"] != "active":
        raise errors.ModelNotActive(detail=f"{model_id} is {row['status']}")
    _require_owner(ctx, row)
    conn.execute("UPDATE models SET next_commission_rate = ? WHERE id = ?", (new_rate, model_id))
    ctx.touch(SYSTEM_STATE_ID)


def withdraw_stake(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], *, staked_id: str) -> None:
    """WithdrawStake{staked_soma}: the whole StakedSoma back as a new coin of the signer (§5,
    protocol.staking). Check order as the chain's executor: ownership, object type, pool."""
    row = conn.execute("SELECT * FROM staked WHERE id = ?", (staked_id,)).fetchone()
    coin = get_coin(conn, staked_id) if row is None else None
    if row is None and coin is None:
        raise errors.InputObjectDeleted(detail=staked_id)
    owner = row["owner"] if row is not None else coin.owner  # type: ignore[union-attr]
    if owner != ctx.sender:
        raise errors.InvalidOwnership(detail=f"{staked_id} is owned by {owner}")
    if row is None:
        raise errors.InvalidObjectType(detail=f"{staked_id} is a Coin, not a StakedSoma")
    model = conn.execute("SELECT * FROM models WHERE id = ?", (row["model_id"],)).fetchone()
    if model is None:
        raise errors.StakingPoolNotFound(detail=f"no model pool for {staked_id}")
    principal = int(row["amount"])
    ctx.value_fee += withdraw_value_fee(principal, state["value_fee_bps"])
    pool_inactive = model["status"] == "inactive" or not model["pool_active"]
    effect = withdraw_effect(int(row["stake_epoch"]), state["epoch"], pool_inactive=pool_inactive)
    if effect is WithdrawEffect.PENDING_STAKE:
        conn.execute("UPDATE models SET pending_stake = pending_stake - ? WHERE id = ?", (principal, model["id"]))
    elif effect is WithdrawEffect.NOW:
        # Every pending withdrawal of the pool is processed with it. The chain subtracts in u64 without
        # an overflow check (a slashed pool can hold less than its stakers' principals); the sim stops at 0.
        conn.execute(
            "UPDATE models SET stake = MAX(stake - pending_withdraw - ?, 0), pending_withdraw = 0 WHERE id = ?",
            (principal, model["id"]),
        )
    else:
        conn.execute("UPDATE models SET pending_withdraw = pending_withdraw + ? WHERE id = ?", (principal, model["id"]))
    delete_object(conn, ctx, "staked", staked_id)
    mint_coin(conn, ctx, ctx.sender, withdrawn_amount(principal))
    ctx.touch(SYSTEM_STATE_ID)


def deactivate_model(conn: sqlite3.Connection, ctx: TxContext, *, model_id: str) -> None:
    row = _model_row(conn, model_id)
    if row["status"] != "active":
        raise errors.ModelNotActive(detail=f"{model_id} is {row['status']}")
    _require_owner(ctx, row)
    conn.execute("UPDATE models SET status = 'inactive', pending_update = NULL WHERE id = ?", (model_id,))
    ctx.touch(SYSTEM_STATE_ID)


def advance_epoch_models(conn: sqlite3.Connection, params: ProtocolParams, new_epoch: int) -> None:
    """Slash missed commits/reveals, cancel stale updates, move staged values (§5).

    Slashed SOMA is burned: the chain reduces the pool balance and credits it nowhere.
    """
    for row in conn.execute("SELECT * FROM models").fetchall():
        status, stake = row["status"], int(row["stake"])
        if status == "created" and commit_missed(row["create_epoch"], new_epoch):
            # No commit by the end of create_epoch + 1: slashed, and again every later epoch.
            conn.execute(
                "UPDATE models SET stake = ?, pool_active = 0 WHERE id = ?",
                (after_missed_deadline(stake, params), row["id"]),
            )
        elif status == "pending" and reveal_missed(row["commit_epoch"], new_epoch):
            # Inactive with the chain's placeholders: an all-zero key and an empty embedding.
            conn.execute(
                "UPDATE models SET status = 'inactive', stake = ?, embedding = NULL, decryption_key = ?"
                " WHERE id = ?",
                (after_missed_deadline(stake, params), ZERO_KEY_B58, row["id"]),
            )
        elif status == "active" and row["pending_update"]:
            if reveal_missed(json.loads(row["pending_update"])["commit_epoch"], new_epoch):
                conn.execute("UPDATE models SET pending_update = NULL WHERE id = ?", (row["id"],))
    conn.execute(
        "UPDATE models SET commission_rate = next_commission_rate WHERE status = 'active'"
    )
    # Pools of models not inactive: withdrawals first, then the pending stake (`staking.rs`
    # process_pending_stakes_and_withdraws); an inactive model's pool is left as it is.
    conn.execute(
        "UPDATE models SET stake = MAX(stake - pending_withdraw, 0) + pending_stake, pending_withdraw = 0,"
        " pending_stake = 0 WHERE status != 'inactive'"
    )
