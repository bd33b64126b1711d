"""The `driver:` section of a recipe."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from soma_ray.protocol.constants import MAX_COMMISSION_BPS, SHANNONS_PER_SOMA

SAFE_NETWORKS = ("sim", "testnet")


class DriverSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state_path: Path = Field(default=Path(".soma-ray/driver.db"), description="SQLite ledger (a persistent volume)")
    allow_network: bool = Field(default=False, description="needed for any network other than sim and testnet")
    dry_run: bool = Field(default=False, description="record and log every action, send nothing")
    concurrent_submissions: int = Field(default=2, ge=1, le=64, description="coins kept free for parallel submits")
    epoch_spend_cap: int | None = Field(
        default=None, ge=0, description="shannons of bonds + fees per epoch (none: unlimited)"
    )
    model_stake: int = Field(default=1 * SHANNONS_PER_SOMA, ge=1, description="stake of a new model (shannons)")
    commission_rate: int = Field(default=0, ge=0, le=MAX_COMMISSION_BPS, description="model commission (bps)")
    auto_reveal: bool = Field(default=True, description="reveal in commit epoch + 1 without being asked")
    claim_others: bool = Field(default=False, description="also claim anyone's targets when the 0.5% beats the fee")
    poll_seconds: float = Field(default=30.0, gt=0, description="epoch polling on a real network (sim: 0.2 s)")
    verify_uploads: bool = Field(default=True, description="fetch every upload back and check size + Blake2b")
    send_attempts: int = Field(
        default=5, ge=1, le=100, description="sends of an action whose answers were lost and that never landed"
    )
    failpoint: str | None = Field(
        default=None, description="fault tests only: exit the driver process once at this point"
    )
