"""One pydantic model per job kind, built from shared sections (chain, storage, wallet).

Unknown keys are errors everywhere (`extra="forbid"`). Secrets are `SecretStr`, filled from
`${VAR}` references, so they never print and never live in the YAML itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from soma_ray.chain.sim.settings import ArchitectureSettings, SimSettings
from soma_ray.data.config import DataConfig
from soma_ray.driver.settings import DriverSettings
from soma_ray.training.config import (
    ExportSection,
    HeldoutSection,
    SweepSection,
    TrainingSection,
    WarmStartSection,
)

NAMED_NETWORKS = ("sim", "testnet", "localnet")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChainConfig(Section):
    """Which SOMA network to use: the embedded simulation (default), testnet, localnet or a URL."""

    network: str = "sim"
    rpc_url: str | None = None
    faucet_url: str | None = None
    admin_url: str | None = None
    scoring_url: str | None = None
    sim: SimSettings = Field(default_factory=SimSettings)

    @field_validator("network")
    @classmethod
    def _known_network(cls, value: str) -> str:
        if value in NAMED_NETWORKS or value.startswith(("http://", "https://")):
            return value
        raise ValueError(f"must be one of {', '.join(NAMED_NETWORKS)} or an http(s):// RPC URL")


class LocalStorageConfig(Section):
    root: Path = Path(".soma-ray/sim/blobs")
    base_url: str = "http://127.0.0.1:9200"


class S3StorageConfig(Section):
    bucket: str
    endpoint_url: str | None = None
    public_url: str | None = None
    region: str | None = None
    prefix: str = ""
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None


class StorageConfig(Section):
    """Where data and encrypted weights are uploaded (public-read: validators download them)."""

    kind: Literal["local", "s3"] = "local"
    local: LocalStorageConfig = Field(default_factory=LocalStorageConfig)
    s3: S3StorageConfig | None = None


class WalletConfig(Section):
    """The signing key: `secret_key` (from ${SOMA_SECRET_KEY}) wins over `key_file`."""

    key_file: Path = Path(".soma-ray/wallet.key")
    secret_key: SecretStr | None = None


class RunSection(Section):
    faucet_requests: int = Field(default=1, ge=0, le=100)
    advance_epochs: int = Field(default=1, ge=0, le=100)


class ScoringSection(Section):
    """The Ray actor pool that scores samples (soma_ray.scoring.pool)."""

    min_actors: int = Field(default=1, ge=1)
    max_actors: int = Field(default=1, ge=1)
    num_gpus_per_actor: float = Field(default=0.0, ge=0.0)
    num_cpus_per_actor: float = Field(default=1.0, gt=0.0)
    batch_samples: int = Field(default=32, ge=1, description="samples per actor call")
    rows_per_forward: int = Field(default=16, ge=1, description="1024-byte chunks per forward pass")
    precision: Literal["float32", "bf16-prefilter"] = "float32"
    prefilter_margin: float = Field(default=0.05, ge=0.0)
    max_resident_models: int = Field(default=3, ge=1)
    cache_dir: Path = Path("/tmp/soma-ray/model-cache")
    architecture: ArchitectureSettings | None = Field(
        default=None, description="model shape; default: the simulated network's, or V1 elsewhere"
    )


class SubmitSection(Section):
    max_samples: int | None = Field(default=None, ge=1, description="stop after this many samples")
    max_fills: int | None = Field(default=None, ge=1, description="stop after this many fills")
    near_miss_margin: float = Field(default=0.02, ge=0.0, description="log samples this close to a threshold")
    progress_interval_s: float = Field(default=10.0, gt=0.0)


class JobConfig(Section):
    kind: str
    chain: ChainConfig = Field(default_factory=ChainConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    wallet: WalletConfig = Field(default_factory=WalletConfig)
    driver: DriverSettings = Field(default_factory=DriverSettings)


class RunConfig(JobConfig):
    """The main lifecycle job."""

    kind: Literal["run"] = "run"
    run: RunSection = Field(default_factory=RunSection)


class SubmitConfig(JobConfig):
    """The data-submission job: stream a source through the scoring pool, submit the hits."""

    kind: Literal["submit"] = "submit"
    scoring: ScoringSection = Field(default_factory=ScoringSection)
    data: DataConfig
    submit: SubmitSection = Field(default_factory=SubmitSection)


class TrainConfig(JobConfig):
    """A Ray Train + DeepSpeed run on the V1 architecture, exported for commit."""

    kind: Literal["train"] = "train"
    model: ArchitectureSettings | None = Field(
        default=None, description="model shape; default: the simulated network's, or V1 elsewhere"
    )
    data: DataConfig
    heldout: HeldoutSection = Field(default_factory=HeldoutSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    warm_start: WarmStartSection = Field(default_factory=WarmStartSection)
    export: ExportSection = Field(default_factory=ExportSection)

    @property
    def architecture(self) -> ArchitectureSettings:
        if self.model is not None:
            return self.model
        if self.chain.network == "sim":
            return self.chain.sim.architecture
        return ArchitectureSettings(preset="v1")


class SweepConfig(TrainConfig):
    """A Ray Tune search around the trainer: one training run per trial, ranked by held-out loss."""

    kind: Literal["sweep"] = "sweep"  # type: ignore[assignment]
    sweep: SweepSection


JOB_CONFIGS: dict[str, type[JobConfig]] = {
    "run": RunConfig,
    "submit": SubmitConfig,
    "train": TrainConfig,
    "sweep": SweepConfig,
}
