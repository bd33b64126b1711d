"""SubmitData and ClaimRewards on the simulated network (§4.2, §6)."""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

import numpy as np

from soma_ray.chain import errors
from soma_ray.chain.sim.store import (
    SYSTEM_STATE_ID,
    TxContext,
    coin_rows,
    delete_coin,
    delete_object,
    f32_blob,
    get_coin,
    mint_coin,
    set_coin_balance,
)
from soma_ray.chain.sim.targets import epoch_budget_allows, generate_target
from soma_ray.protocol.bond import data_size_allowed, submission_bond
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.protocol.fees import claim_value_fee
from soma_ray.protocol.rewards import split_expired, split_filled
from soma_ray.protocol.windows import audit_window_open, claimable_from, target_expired


def _target_row(conn: sqlite3.Connection, ctx: TxContext, target_id: str) -> sqlite3.Row:
    """The target a transaction writes (a shared input: remembered as it was before)."""
    row: sqlite3.Row | None = conn.execute("SELECT * FROM targets WHERE id = ?", (target_id,)).fetchone()
    if row is None:
        raise errors.ObjectNotFound(f"target {target_id} does not exist (claimed targets are deleted)")
    ctx.snapshot(target_id)
    return row


def pick_bond_coin(conn: sqlite3.Connection, owner: str, gas_coin: str, bond: int) -> str:
    """Like the SDK: a separate coin when one can cover the bond, else the gas coin itself."""
    for coin in coin_rows(conn, owner):
        if coin.id != gas_coin and coin.balance >= bond:
            return coin.id
    return gas_coin


def submit_data(
    conn: sqlite3.Connection,
    ctx: TxContext,
    state: dict[str, Any],
    params: ProtocolParams,
    gas_coin: str,
    *,
    target_id: str,
    data_url: str,
    data_checksum: str,
    data_size: int,
    model_id: str,
    embedding: np.ndarray,
    distance_score: float,
    loss_score: list[float],
    bond_coin: str | None = None,
) -> str | None:
    """Checks in the chain's order; returns the spawned replacement target id, if any."""
    target = _target_row(conn, ctx, target_id)
    epoch = state["epoch"]
    if target["status"] != "open":
        raise errors.TargetNotOpen(detail=target_id)
    if target_expired(target["generation_epoch"], epoch):
        raise errors.TargetExpired(detail=f"generation_epoch: {target['generation_epoch']}, current_epoch: {epoch}")
    if model_id not in json.loads(target["model_ids"]):
        raise errors.ModelNotInTarget(detail=f"model_id: {model_id}, target_id: {target_id}")
    target_dim = len(target["embedding"]) // 4
    if embedding.size != target_dim:
        raise errors.EmbeddingDimensionMismatch(detail=f"expected: {target_dim}, actual: {embedding.size}")
    distance = np.float32(distance_score)
    # f32 compare; a NaN distance passes exactly as on chain (§4.2, §11.6).
    if not math.isnan(distance) and distance > np.float32(target["distance_threshold"]):
        raise errors.DistanceExceedsThreshold(
            detail=f"score: {float(distance)}, threshold: {float(np.float32(target['distance_threshold']))}"
        )
    if not data_size_allowed(data_size, params):
        raise errors.DataExceedsMaxSize(detail=f"size: {data_size}, max_size: {params.max_submission_data_size}")
    bond = submission_bond(data_size, params)
    coin_id = bond_coin or pick_bond_coin(conn, ctx.sender, gas_coin, bond)
    coin = get_coin(conn, coin_id)
    # prepare_gas has already taken the base fee from the gas coin when execution starts.
    available = 0
    if coin is not None and coin.owner == ctx.sender:
        available = coin.balance - (params.base_fee if coin_id == gas_coin else 0)
    if available < bond:
        raise errors.InsufficientBond(detail=f"required: {bond}, provided: {available}")
    assert coin is not None
    if coin.balance == bond and coin_id != gas_coin:
        delete_coin(conn, ctx, coin_id)
    else:
        set_coin_balance(conn, ctx, coin_id, coin.balance - bond)
    model = conn.execute("SELECT owner, status FROM models WHERE id = ?", (model_id,)).fetchone()
    if model is None or model["status"] != "active":
        raise errors.ModelNotActive(detail=model_id)
    conn.execute(
        "UPDATE targets SET status = 'filled', fill_epoch = ?, submitter = ?, winning_model_id = ?,"
        " winning_model_owner = ?, bond_amount = ?, data_url = ?, data_checksum = ?, data_size = ?,"
        " winning_embedding = ?, winning_distance = ?, winning_loss = ? WHERE id = ?",
        (
            epoch,
            ctx.sender,
            model_id,
            model["owner"],  # captured now: paid even if the model later changes hands or dies
            bond,
            data_url,
            data_checksum,
            data_size,
            f32_blob(embedding),
            float(distance),
            json.dumps([float(x) for x in loss_score]),
            target_id,
        ),
    )
    ctx.touch(target_id)
    ctx.touch(SYSTEM_STATE_ID)
    state["target_state"]["hits_this_epoch"] += 1
    ctx.next_creation_num()  # the chain consumes and discards creation number 0 here
    if epoch_budget_allows(state, params):
        # Spawn-on-fill: seed from creation number 1, object id from 2 (unlike epoch start).
        seed_num = ctx.next_creation_num()
        return generate_target(conn, ctx, state, params, seed_digest=ctx.digest, seed_num=seed_num)
    return None


def claim_rewards(
    conn: sqlite3.Connection,
    ctx: TxContext,
    state: dict[str, Any],
    params: ProtocolParams,
    *,
    target_id: str,
) -> dict[str, int]:
    """Pay out a filled target after its audit window, or return an expired one to the pool."""
    target = _target_row(conn, ctx, target_id)
    epoch = state["epoch"]
    reward = int(target["reward_pool"])
    payouts: dict[str, int] = {}
    if target["status"] == "filled":
        if audit_window_open(target["fill_epoch"], epoch):
            raise errors.AuditWindowOpen(
                detail=f"fill_epoch: {target['fill_epoch']}, current_epoch: {epoch}; filled in epoch"
                f" {target['fill_epoch']}, claimable from {claimable_from(target['fill_epoch'])}"
            )
        split = split_filled(reward, params)
        bond = int(target["bond_amount"])
        # New coins in the chain's order, each only when non-zero; the bond comes back separately.
        payees = [
            (target["submitter"], split.submitter),
            (target["winning_model_owner"], split.model_owner),
            (ctx.sender, split.claimer),
            (target["submitter"], bond),
        ]
        payouts = {"submitter": split.submitter, "model_owner": split.model_owner, "claimer": split.claimer, "bond": bond}
    else:
        if not target_expired(target["generation_epoch"], epoch):
            raise errors.TargetNotFilled(detail=f"{target_id} is still open this epoch")
        split = split_expired(reward, params)
        state["emission_pool"]["balance"] += split.to_emission_pool
        payees = [(ctx.sender, split.claimer)]
        payouts = {"emission_pool": split.to_emission_pool, "claimer": split.claimer}
    for owner, amount in payees:
        if amount > 0:
            mint_coin(conn, ctx, owner, amount)
    ctx.touch(SYSTEM_STATE_ID)
    ctx.value_fee += claim_value_fee(reward, state["value_fee_bps"])
    delete_object(conn, ctx, "targets", target_id)
    return payouts
