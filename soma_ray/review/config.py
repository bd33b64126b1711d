"""The `review:` section of a recipe: what the epoch review counts as a cost and when it raises an alert."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReviewSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gpu_hour_cost: float | None = Field(
        default=None, ge=0.0, description="SOMA per GPU hour: the compute the jobs recorded becomes a cost "
        "(none: compute is left out of the P&L)")
    rival_distance: float = Field(
        default=0.3, gt=0.0, le=2.0, description="alert when another owner's model sits within this cosine "
        "distance of one of ours...")
    rival_stake_ratio: float = Field(
        default=1.0, ge=0.0, description="...with at least this many times our model's stake")
    win_rate_drop: float = Field(
        default=0.2, ge=0.0, le=1.0, description="alert when the last finished epoch's win rate is this far "
        "(absolute) below the earlier epochs' average")
    share_drop: float = Field(
        default=0.3, ge=0.0, le=1.0, description="alert when our share of the epoch's targets falls by this "
        "fraction of the earlier epochs' average")
    every_epoch: bool = Field(
        default=False, description="the driver writes the review (review/ beside its ledger) at every new epoch, "
        "not only the board snapshot")
    epochs: int = Field(default=20, ge=2, le=1000, description="epochs of history the review reads")
    draws: int = Field(default=500, ge=10, le=100_000, description="simulated targets for assignment shares")
