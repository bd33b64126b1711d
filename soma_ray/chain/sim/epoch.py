"""Epoch change on the simulated network, in the chain's order (protocol.md §11.3)."""

from __future__ import annotations

import sqlite3
from typing import Any

from soma_ray.chain.sim.models import advance_epoch_models
from soma_ray.chain.sim.store import TxContext
from soma_ray.chain.sim.targets import epoch_budget_allows, generate_target
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.protocol.difficulty import adjust_threshold, reward_per_target, update_hits_ema
from soma_ray.protocol.fees import adjust_value_fee
from soma_ray.protocol.rewards import validator_share


def advance_epoch(
    conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], params: ProtocolParams
) -> list[str]:
    """Run one epoch change; returns the ids of the targets it created."""
    pool = state["emission_pool"]
    state["value_fee_bps"] = adjust_value_fee(state["value_fee_bps"], state["fees_this_epoch"], params)
    # Emission + the epoch's fees: the validators' share leaves, the rest returns to the pool.
    # (The simulated clock only moves here, so a full epoch has always elapsed.)
    emission = min(pool["emission_per_epoch"], pool["balance"])
    pool["balance"] -= emission
    distributable = emission + state["fees_this_epoch"]
    to_validators = validator_share(distributable, params)
    state["validator_rewards"] += to_validators
    pool["balance"] += distributable - to_validators
    state["fees_this_epoch"] = 0

    state["epoch"] += 1
    state["epoch_start_ms"] += params.epoch_duration_ms

    ts = state["target_state"]
    ts["hits_ema"] = update_hits_ema(ts["hits_ema"], ts["hits_this_epoch"], params.target_hits_ema_decay_bps)
    ts["distance_threshold"] = adjust_threshold(ts["distance_threshold"], ts["hits_ema"], params)
    ts["hits_this_epoch"] = 0
    ts["targets_generated_this_epoch"] = 0
    ts["reward_per_target"] = reward_per_target(pool["emission_per_epoch"], params)

    advance_epoch_models(conn, params, state["epoch"])

    created: list[str] = []
    for _ in range(params.target_initial_targets_per_epoch):
        if not epoch_budget_allows(state, params):
            break
        # Epoch-start targets: seed and id come from the same creation_num (§3.2).
        seed_num = ctx.peek_creation_num()
        target_id = generate_target(conn, ctx, state, params, seed_digest=ctx.digest, seed_num=seed_num)
        if target_id is None:
            break
        created.append(target_id)
    return created
