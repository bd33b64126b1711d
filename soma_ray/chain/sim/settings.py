"""How an embedded simulated network is set up (its genesis). Fixed once the network exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from soma_ray.protocol.constants import SHANNONS_PER_SOMA, ProtocolParams

_PRESETS: dict[str, dict[str, int]] = {
    # localnet's --small-model (protocol.md §1.7)
    "small": {"embedding_dim": 16, "pwff_hidden_dim": 32, "num_layers": 2, "num_heads": 4},
    # the full V1 architecture (§1.4): ~4.84 GB of float32 weights per model
    "v1": {"embedding_dim": 2048, "pwff_hidden_dim": 8192, "num_layers": 24, "num_heads": 8},
}


class ArchitectureSettings(BaseModel):
    """The V1 model shape the network scores with; target embeddings have its width."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["small", "v1", "custom"] = "small"
    embedding_dim: int = Field(default=16, gt=0)
    pwff_hidden_dim: int = Field(default=32, gt=0)
    num_layers: int = Field(default=2, gt=0)
    num_heads: int = Field(default=4, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("preset", "small") in _PRESETS:
            return {**_PRESETS[raw.get("preset", "small")], **raw}
        return raw

    def shape(self) -> dict[str, int]:
        """The keyword arguments of soma-models' `ModelConfig` (besides dropout)."""
        return self.model_dump(include={"embedding_dim", "pwff_hidden_dim", "num_layers", "num_heads"})

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ArchitectureSettings:
        if self.embedding_dim % self.num_heads:
            raise ValueError(
                f"embedding_dim {self.embedding_dim} is not divisible by num_heads {self.num_heads}"
            )
        return self


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
    emission_per_epoch: int = Field(default=1_370 * SHANNONS_PER_SOMA, ge=0)
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
