"""How an embedded simulated network is set up (its genesis). Fixed once the network exists."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from soma_ray.protocol.architecture import ArchitectureSettings
from soma_ray.protocol.constants import GENESIS_EMISSION_PER_EPOCH, SHANNONS_PER_SOMA, ProtocolParams


class SimSettings(BaseModel):
    """Genesis of the simulated network; read only when the network is first created."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(default=Path(".soma-ray/sim"), description="folder holding sim.db and blobs/")
    blob_url: str = Field(
        default="http://127.0.0.1:9200",
        description="public URL at which blobs/ is served (`soma-ray sim serve`)",
    )
    architecture: ArchitectureSettings = Field(default_factory=ArchitectureSettings)
    genesis_models: int = Field(default=4, ge=0, le=64)
    genesis_model_stake: int = Field(default=100 * SHANNONS_PER_SOMA, gt=0)
    genesis_targets: int | None = Field(
        default=None, ge=0, description="targets at genesis; default = target_initial_targets_per_epoch"
    )
    emission_pool: int = Field(default=1_000_000 * SHANNONS_PER_SOMA, ge=0)
    emission_per_epoch: int = Field(default=GENESIS_EMISSION_PER_EPOCH, ge=0)
    faucet_amount: int = Field(default=2 * SHANNONS_PER_SOMA, gt=0, description="localnet: 2 SOMA")
    params: dict[str, int | float] = Field(
        default_factory=dict, description="protocol parameter overrides (v5 defaults otherwise)"
    )

    @model_validator(mode="after")
    def _known_params(self) -> SimSettings:
        known = set(ProtocolParams().to_dict())
        unknown = sorted(set(self.params) - known)
        if unknown:
            raise ValueError(f"unknown protocol parameter(s): {', '.join(unknown)}")
        return self

    def protocol_params(self) -> ProtocolParams:
        merged = {**ProtocolParams().to_dict(), **self.params}
        merged["target_embedding_dim"] = self.architecture.embedding_dim
        return ProtocolParams.from_dict(merged)

    @property
    def db_path(self) -> Path:
        return self.path / "sim.db"

    @property
    def blob_dir(self) -> Path:
        return self.path / "blobs"
