"""The chain layer: one async `Chain` interface, domain types and typed errors."""

from soma_ray.chain.base import Chain
from soma_ray.chain.errors import ChainError, TransactionFailed
from soma_ray.chain.types import (
    ActiveModel,
    Coin,
    Manifest,
    ModelInfo,
    ModelStatus,
    NetworkInfo,
    Target,
    TargetPage,
    TargetStatus,
    TxResult,
)

__all__ = [
    "ActiveModel",
    "Chain",
    "ChainError",
    "Coin",
    "Manifest",
    "ModelInfo",
    "ModelStatus",
    "NetworkInfo",
    "Target",
    "TargetPage",
    "TargetStatus",
    "TransactionFailed",
    "TxResult",
]
