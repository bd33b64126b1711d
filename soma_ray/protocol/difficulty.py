"""Distance-threshold adjustment at each epoch change (protocol.md §3.5, v5 rules), and the reward
and epoch budget that fund targets (§3.3)."""

from __future__ import annotations

import numpy as np

from soma_ray.protocol.constants import BPS, EMBEDDING_DISTANCE_STD, MIN_Z_STEP, ProtocolParams


def update_hits_ema(hits_ema: int, hits_this_epoch: int, decay_bps: int) -> int:
    """Integer EMA; the first non-zero epoch bootstraps it with the raw count."""
    if hits_ema == 0:
        return hits_this_epoch
    return (decay_bps * hits_ema + (BPS - decay_bps) * hits_this_epoch) // BPS


def threshold_z(threshold: float) -> float:
    """A distance threshold in the difficulty rule's z units, `(1 − thr)/EMBEDDING_DISTANCE_STD`
    (§3.5): cosine distances between unrelated embeddings centre on 1 with that spread, so the
    threshold 1.05 is z ≈ −2.27 and the floor 0.95 is z ≈ +2.27 (higher z, harder target)."""
    return (1.0 - threshold) / EMBEDDING_DISTANCE_STD


def adjust_threshold(threshold: float, hits_ema: int, params: ProtocolParams) -> float:
    """Move the threshold one z-step toward `target_hits_per_epoch` fills (f32 math).

    Too few hits → easier (larger threshold); too many → harder. Clamped to
    [target_min_distance_threshold, target_max_distance_threshold]. No change while the EMA
    is 0 (bootstrap).
    """
    f32 = np.float32
    if hits_ema == 0:
        return float(f32(threshold))
    std = f32(EMBEDDING_DISTANCE_STD)
    z = (f32(1.0) - f32(threshold)) / std
    rate = f32(params.target_difficulty_adjustment_rate_bps) / f32(BPS)
    step = max(f32(abs(z)) * rate, f32(MIN_Z_STEP))
    if hits_ema > params.target_hits_per_epoch:
        z = f32(z + step)
    elif hits_ema < params.target_hits_per_epoch:
        z = f32(z - step)
    z_min = (f32(1.0) - f32(params.target_max_distance_threshold)) / std
    z_max = (f32(1.0) - f32(params.target_min_distance_threshold)) / std
    z = min(max(z, z_min), z_max)
    return float(f32(f32(1.0) - std * f32(z)))


def reward_per_target(emission_per_epoch: int, params: ProtocolParams) -> int:
    """v3+: the epoch's target budget spread over `target_hits_per_epoch` fills."""
    budget = epoch_target_budget(emission_per_epoch, params)
    return budget // max(params.target_hits_per_epoch, 1)


def genesis_reward_per_target(emission_per_epoch: int, params: ProtocolParams) -> int:
    """Genesis targets: (emission·8000/10000) / (2·initial_targets) (§3.3)."""
    budget = epoch_target_budget(emission_per_epoch, params)
    return budget // (2 * params.target_initial_targets_per_epoch)


def epoch_target_budget(emission_per_epoch: int, params: ProtocolParams) -> int:
    """v3+: what one epoch may spend on targets, `emission_per_epoch·target_reward_allocation_bps/10000`."""
    return emission_per_epoch * params.target_reward_allocation_bps // BPS


def target_budget_allows(
    pool_balance: int, emission_per_epoch: int, targets_generated: int, reward: int, params: ProtocolParams
) -> bool:
    """Whether one more target can be funded: the pool covers its reward and (v3+)
    `(targets_generated_this_epoch + 1)·reward_per_target` stays within the epoch budget."""
    budget = epoch_target_budget(emission_per_epoch, params)
    return pool_balance >= reward and (targets_generated + 1) * reward <= budget
