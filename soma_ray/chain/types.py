"""Domain types the rest of soma-ray sees, whichever chain is behind them.

Amounts are integer shannons (1 SOMA = 1e9); embeddings are float32 numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum

import numpy as np

from soma_ray.chain.errors import ChainError
from soma_ray.protocol.constants import ProtocolParams


class TargetStatus(StrEnum):
    """A target's status as the network reports it, and the filter values of `list_targets`
    (protocol.md §3.4). A `str`: each member equals (and formats as) its value."""

    OPEN = "open"
    FILLED = "filled"
    CLAIMABLE = "claimable"
    EXPIRED = "expired"
    CLAIMED = "claimed"

    @classmethod
    def parse(cls, value: str) -> TargetStatus:
        """A status filter given as text (a command line, a config), or one clear error."""
        try:
            return cls(value)
        except ValueError:
            raise ChainError(
                f"invalid status filter {value!r}: must be open, filled, claimed, expired or claimable"
            ) from None


class ModelStatus(str, Enum):
    CREATED = "created"
    PENDING = "pending"
    ACTIVE = "active"
    INACTIVE = "inactive"


@dataclass(frozen=True)
class Coin:
    id: str
    owner: str
    balance: int


@dataclass(frozen=True)
class Target:
    id: str
    status: TargetStatus
    embedding: np.ndarray
    model_ids: list[str]
    distance_threshold: float
    reward_pool: int
    generation_epoch: int
    bond_amount: int = 0
    submitter: str | None = None
    winning_model_id: str | None = None
    data_url: str | None = None
    fill_epoch: int | None = None


@dataclass(frozen=True)
class TargetPage:
    targets: list[Target]
    next_page_token: str | None


@dataclass(frozen=True)
class Manifest:
    """Where a model's encrypted weights live and how to check and open them (§2.4)."""

    url: str
    checksum: str
    size: int
    decryption_key: str | None = None


@dataclass(frozen=True)
class ActiveModel:
    model_id: str
    owner: str
    embedding: np.ndarray
    stake: int
    commission_rate: int = 0
    next_epoch_commission_rate: int = 0
    has_pending_update: bool = False


@dataclass(frozen=True)
class ModelInfo:
    """A model in the registry, in any state (what the commit/reveal machine needs)."""

    model_id: str
    owner: str
    status: ModelStatus
    stake: int
    create_epoch: int
    commit_epoch: int | None
    manifest: Manifest | None
    has_pending_update: bool = False
    pending_commit_epoch: int | None = None
    commission_rate: int = 0  # bps, in force this epoch
    next_epoch_commission_rate: int = 0  # bps, staged: in force from the next epoch (§5)


@dataclass(frozen=True)
class StakedSoma:
    """A `StakedSoma` object: `principal` shannons staked into the pool of `model_id` (None when the
    pool is not a model's), counting from `stake_activation_epoch`. Withdrawn whole (§5)."""

    id: str
    owner: str
    pool_id: str
    model_id: str | None
    principal: int
    stake_activation_epoch: int


@dataclass(frozen=True)
class NetworkInfo:
    chain: str
    epoch: int
    protocol_version: int
    params: ProtocolParams
    distance_threshold: float
    reward_per_target: int
    emission_pool_balance: int
    emission_per_epoch: int
    hits_this_epoch: int
    hits_ema: int
    targets_generated_this_epoch: int
    epoch_start_ms: int
    value_fee_bps: int

    @property
    def embedding_dim(self) -> int:
        return self.params.target_embedding_dim

    @property
    def next_epoch_ms(self) -> int:
        return self.epoch_start_ms + self.params.epoch_duration_ms


@dataclass(frozen=True)
class TxResult:
    """Effects of one executed transaction. `fee` is what the sender's gas coin paid."""

    digest: str
    ok: bool
    fee: int
    created: list[str] = field(default_factory=list)
    mutated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    error: str | None = None
