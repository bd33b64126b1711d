"""How an embedded simulated network is set up (its genesis). Fixed once the network exists."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from soma_ray.protocol.architecture import ArchitectureSettings
from soma_ray.protocol.constants import (
    GENESIS_EMISSION_PER_EPOCH,
    MAX_COMMISSION_BPS,
    SHANNONS_PER_SOMA,
    ProtocolParams,
)

# Commission bands a board usually shows (bps): none, low, usual, high. Commission is stored
# but paid nowhere at the pinned commit (protocol.md §5); the board still reads it.
DEFAULT_COMMISSION_BANDS: list[tuple[int, int]] = [(0, 0), (100, 500), (500, 1000), (1000, 2000)]


class GenesisBoard(BaseModel):
    """A seeded board of genesis models: clustered embeddings, several owners, stakes spread
    log-uniformly between `stake_min` and `stake_max`, commissions drawn from bands."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(default=0, ge=0, description="one seed for the whole board")
    owners: int = Field(default=4, ge=1, le=64, description="distinct owner accounts (deterministic keys)")
    clusters: int = Field(default=4, ge=1, le=64, description="embedding clusters the models sit in")
    cluster_spread: float = Field(
        default=0.3, gt=0.0, le=10.0,
        description="a model's offset from its cluster centre, per coordinate, relative to the centre's N(0,1)",
    )
    stake_min: int = Field(default=1 * SHANNONS_PER_SOMA, gt=0, description="smallest stake (shannons)")
    stake_max: int = Field(default=100 * SHANNONS_PER_SOMA, gt=0, description="largest stake (shannons)")
    commission_bands: list[tuple[int, int]] = Field(
        default_factory=lambda: list(DEFAULT_COMMISSION_BANDS),
        min_length=1,
        description="[low, high] bps bands; each model draws a band, then a rate inside it",
    )

    @model_validator(mode="after")
    def _ranges(self) -> GenesisBoard:
        if self.stake_max < self.stake_min:
            raise ValueError(
                f"genesis_board.stake_max {self.stake_max} is below stake_min {self.stake_min}; swap them"
            )
        for low, high in self.commission_bands:
            if not 0 <= low <= high <= MAX_COMMISSION_BPS:
                raise ValueError(
                    f"genesis_board.commission_bands [{low}, {high}]: need 0 <= low <= high <= {MAX_COMMISSION_BPS} bps"
                )
        return self


class RivalSettings(BaseModel):
    """Background rivals: seeded accounts that act at every epoch change through the network's
    own transactions (create, commit, reveal, stake, submit, claim)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(default=0, ge=0)
    accounts: int = Field(default=3, ge=1, le=32, description="rival accounts (deterministic keys)")
    funds: int = Field(
        default=1_000 * SHANNONS_PER_SOMA, gt=0, description="coins each rival account holds at genesis (shannons)"
    )
    fill_share: float = Field(
        default=0.3, ge=0.0, le=1.0, description="share of the epoch's open targets the rivals fill at its start"
    )
    new_models_per_epoch: int = Field(default=1, ge=0, le=16, description="models the rivals create each epoch")
    max_models: int = Field(default=6, ge=0, le=64, description="the rivals stop creating models at this many")
    model_stake: int = Field(default=1 * SHANNONS_PER_SOMA, gt=0, description="stake of a new rival model")
    add_stake: int = Field(
        default=1 * SHANNONS_PER_SOMA, ge=0, description="stake each rival adds to its smallest active model per epoch"
    )
    data_bytes: int = Field(default=512, ge=1, le=1 << 20, description="size of a rival's submitted data")


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
    genesis_board: GenesisBoard | None = Field(
        default=None,
        description="a seeded board (clusters, owners, spread stakes and commissions); "
        "none: one owner, stakes genesis_model_stake × (i+1), commission 0",
    )
    rivals: RivalSettings | None = Field(default=None, description="background rivals; none: nobody else acts")

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

    def genesis_identity(self) -> str:
        """The settings as the chain id is derived from them. Sections left unset are omitted, so a
        network made before they existed keeps its chain id (and every object id)."""
        unset = {name for name in ("genesis_board", "rivals") if getattr(self, name) is None}
        return self.model_dump_json(exclude=unset)

    @property
    def db_path(self) -> Path:
        return self.path / "sim.db"

    @property
    def blob_dir(self) -> Path:
        return self.path / "blobs"
