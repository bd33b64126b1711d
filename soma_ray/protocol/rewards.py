"""The exact integer split of a claimed target's reward, and the validators' share of an epoch's
emission and fees (protocol.md §6)."""

from __future__ import annotations

from dataclasses import dataclass

from soma_ray.protocol.constants import ProtocolParams, bps_mul


@dataclass(frozen=True)
class RewardSplit:
    submitter: int
    model_owner: int
    claimer: int
    to_emission_pool: int = 0


def split_filled(reward_pool: int, params: ProtocolParams) -> RewardSplit:
    """Model owner and claimer get floor(bps); the submitter gets the rounding remainder."""
    model = bps_mul(reward_pool, params.target_model_reward_share_bps)
    claimer = bps_mul(reward_pool, params.target_claimer_incentive_bps)
    return RewardSplit(submitter=reward_pool - model - claimer, model_owner=model, claimer=claimer)


def split_expired(reward_pool: int, params: ProtocolParams) -> RewardSplit:
    """An expired, unfilled target: 0.5% to the claimer, the rest back to the emission pool."""
    claimer = bps_mul(reward_pool, params.target_claimer_incentive_bps)
    return RewardSplit(submitter=0, model_owner=0, claimer=claimer, to_emission_pool=reward_pool - claimer)


def validator_share(distributable: int, params: ProtocolParams) -> int:
    """At an epoch change, validators get `validator_reward_allocation_bps` (70%) of the epoch's
    emission plus fees; the rest returns to the emission pool."""
    return bps_mul(distributable, params.validator_reward_allocation_bps)
