"""Targets on the simulated network: generation (§3.2–§3.3) and the virtual statuses (§3.4)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import numpy as np

from soma_ray.chain.errors import ChainError
from soma_ray.chain.sim.store import TxContext, f32_array, f32_blob
from soma_ray.chain.types import Target, TargetStatus
from soma_ray.protocol.assignment import select_models_weighted_knn
from soma_ray.protocol.commitments import target_seed
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.protocol.difficulty import target_budget_allows
from soma_ray.protocol.targets import target_embedding
from soma_ray.protocol.windows import audit_window_open, latest_claimable_fill_epoch, target_open


def active_models(conn: sqlite3.Connection) -> tuple[list[str], np.ndarray, list[int]]:
    """Active models in registry order (BTreeMap by id bytes = lowercase hex order)."""
    rows = conn.execute(
        "SELECT id, embedding, stake FROM models WHERE status = 'active' ORDER BY id"
    ).fetchall()
    ids = [r["id"] for r in rows]
    embeddings = np.stack([f32_array(r["embedding"]) for r in rows]) if rows else np.zeros((0, 0))
    return ids, embeddings, [int(r["stake"]) for r in rows]


def generate_target(
    conn: sqlite3.Connection,
    ctx: TxContext,
    state: dict[str, Any],
    params: ProtocolParams,
    *,
    seed_digest: bytes,
    seed_num: int,
) -> str | None:
    """Create one open target funded from the emission pool; None when no model is active."""
    ids, embeddings, stakes = active_models(conn)
    if not ids:
        return None
    reward = int(state["target_state"]["reward_per_target"])
    seed = target_seed(seed_digest, seed_num)
    embedding = target_embedding(seed, params.target_embedding_dim)
    model_ids = select_models_weighted_knn(
        embedding, ids, embeddings, stakes, params.target_models_per_target
    )
    target_id = ctx.new_object_id()
    conn.execute(
        "INSERT INTO targets (id, seed, embedding, model_ids, distance_threshold, reward_pool,"
        " generation_epoch, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'open')",
        (
            target_id,
            str(seed),
            f32_blob(embedding),
            json.dumps(model_ids),
            float(state["target_state"]["distance_threshold"]),
            reward,
            int(state["epoch"]),
        ),
    )
    state["emission_pool"]["balance"] -= reward
    state["target_state"]["targets_generated_this_epoch"] += 1
    return target_id


def epoch_budget_allows(state: dict[str, Any], params: ProtocolParams) -> bool:
    """Pool covers one more reward and (v3+) the epoch's target budget is not exceeded."""
    ts, pool = state["target_state"], state["emission_pool"]
    return target_budget_allows(
        pool["balance"], pool["emission_per_epoch"], ts["targets_generated_this_epoch"],
        int(ts["reward_per_target"]), params,
    )


def virtual_status(row: sqlite3.Row, epoch: int) -> str:
    """What `list_targets` reports: expired and post-audit targets read as "claimable"."""
    if row["status"] == "open":
        return "open" if target_open(row["generation_epoch"], epoch) else "claimable"
    return "filled" if audit_window_open(row["fill_epoch"], epoch) else "claimable"


def status_clause(status: TargetStatus | None, epoch: int) -> tuple[str, list[Any]]:
    """SQL for the list_targets status filters open|filled|claimed|expired|claimable (a plain
    string of one of these works too: a `TargetStatus` equals its value)."""
    if status is None:
        return "1", []
    if status == "open":
        return "status = 'open' AND generation_epoch = ?", [epoch]
    if status == "expired":
        return "status = 'open' AND generation_epoch < ?", [epoch]
    if status == "filled":
        return "status = 'filled'", []
    if status == "claimable":
        return "((status = 'open' AND generation_epoch < ?) OR (status = 'filled' AND fill_epoch <= ?))", [
            epoch,
            latest_claimable_fill_epoch(epoch),
        ]
    if status == "claimed":
        return "0", []  # claimed targets are deleted in the claim transaction
    raise ChainError(f"invalid status filter {status!r}: must be open, filled, claimed, expired or claimable")


def target_from_row(row: sqlite3.Row, epoch: int) -> Target:
    return Target(
        id=row["id"],
        status=TargetStatus(virtual_status(row, epoch)),
        embedding=f32_array(row["embedding"]),
        model_ids=json.loads(row["model_ids"]),
        distance_threshold=float(row["distance_threshold"]),
        reward_pool=int(row["reward_pool"]),
        generation_epoch=int(row["generation_epoch"]),
        bond_amount=int(row["bond_amount"]),
        submitter=row["submitter"],
        winning_model_id=row["winning_model_id"],
        data_url=row["data_url"],
        fill_epoch=row["fill_epoch"],
    )
