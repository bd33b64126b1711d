"""Protocol v5 parameters and hard-coded constants (protocol.md §10)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

SHANNONS_PER_SOMA = 1_000_000_000
BPS = 10_000

PROTOCOL_VERSION = 5
EMBEDDING_DISTANCE_STD = 0.022  # z-score unit of the difficulty rule (§3.5)
MIN_Z_STEP = 2.0  # v5
QUORUM_THRESHOLD = 6_667  # of 10,000 voting power (§4.4)
MAX_COMMISSION_BPS = BPS  # a model's commission_rate is at most 100% (§5)
GENESIS_EMISSION_PER_EPOCH = 1_370 * SHANNONS_PER_SOMA
TOTAL_SUPPLY = 10_000_000 * SHANNONS_PER_SOMA

# V1 data contract (§1.3) and the small localnet model (§1.7).
MAX_SEQ_LEN = 1024
BATCH_SIZE = 16
VOCAB_SIZE = 264
PAD_TOKEN = 256
EOS_TOKEN = 257

# SIGReg in the scoring loss (§1.5): loss = CE + SIGREG_COEFFICIENT·SIGReg, SIGREG_SLICES random
# projections, characteristic function sampled at SIGREG_POINTS points t_k on [0, SIGREG_T_MAX].
SIGREG_SLICES = 256
SIGREG_POINTS = 17
SIGREG_T_MAX = 3.0
SIGREG_COEFFICIENT = 0.02  # V1_SIG_REG_COEFFICIENT


@dataclass(frozen=True)
class ProtocolParams:
    """The chain's `SystemParameters` (v5 defaults). Thresholds are f32 on chain."""

    epoch_duration_ms: int = 86_400_000
    validator_reward_allocation_bps: int = 7_000
    reward_slashing_rate_bps: int = 5_000
    model_min_stake: int = 1 * SHANNONS_PER_SOMA
    model_architecture_version: int = 1
    model_reveal_slash_rate_bps: int = 5_000
    model_tally_slash_rate_bps: int = 9_500
    target_epoch_fee_collection: int = 1 * SHANNONS_PER_SOMA
    base_fee: int = 1_000
    write_object_fee: int = 300
    value_fee_bps: int = 10
    min_value_fee_bps: int = 1
    max_value_fee_bps: int = 50
    fee_adjustment_rate_bps: int = 1_250
    target_models_per_target: int = 3
    target_embedding_dim: int = 2048
    target_initial_distance_threshold: float = 1.05
    target_reward_allocation_bps: int = 8_000
    target_hits_per_epoch: int = 86_400
    target_hits_ema_decay_bps: int = 9_000
    target_difficulty_adjustment_rate_bps: int = 10_000
    target_max_distance_threshold: float = 2.0
    target_min_distance_threshold: float = 0.95
    target_initial_targets_per_epoch: int = 100
    target_submitter_reward_share_bps: int = 4_975
    target_model_reward_share_bps: int = 4_975
    target_claimer_incentive_bps: int = 50
    submission_bond_per_byte: int = 65
    max_submission_data_size: int = 1_048_576

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ProtocolParams:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def bps_mul(amount: int, bps: int) -> int:
    """floor(amount * bps / 10000) in exact integer arithmetic (u128 on chain)."""
    return amount * bps // BPS


def to_shannons(soma: float) -> int:
    """Same truncating rule as `SomaClient.to_shannons`."""
    return int(soma * SHANNONS_PER_SOMA)


def to_soma(shannons: int) -> float:
    return shannons / SHANNONS_PER_SOMA
