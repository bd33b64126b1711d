"""What a model keeps of its stake when the epoch change slashes it (protocol.md §5)."""

from __future__ import annotations

from soma_ray.protocol.constants import ProtocolParams, bps_mul


def after_missed_deadline(stake: int, params: ProtocolParams) -> int:
    """A model that missed its commit or reveal deadline loses `model_reveal_slash_rate_bps` (50%)."""
    return stake - bps_mul(stake, params.model_reveal_slash_rate_bps)

