"""One pydantic model per job kind, built from shared sections (chain, storage, wallet).

Unknown keys are errors everywhere (`extra="forbid"`). Secrets are `SecretStr`, filled from
`${VAR}` references, so they never print and never live in the YAML itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

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
    resources_per_actor: dict[str, float] = Field(
        default_factory=dict, description='custom Ray resources, e.g. {scorer: 1} to use scoring nodes only'
    )
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


class CycleSection(Section):
    folder: Path = Field(
        default=Path(".soma-ray/cycle"),
        description="everything the cycle makes: sim/, wallet.key, driver.db, train/, artifacts/, model-cache/",
    )
    faucet_requests: int = Field(default=3, ge=1, le=100, description="2 SOMA each: stake (1 SOMA) + bonds + fees")
    fresh: bool = Field(default=True, description="wipe `folder` first (only a folder the cycle made)")


# The package's own source files: data that ships with soma-ray, so the cycle needs no download.
BUNDLED_SOURCE = Path(__file__).resolve().parents[1]

# Defaults that make a cycle take minutes on a laptop; a recipe's section is merged over them.
_CYCLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {"source": "files", "path": str(BUNDLED_SOURCE), "globs": ["**/*.py"], "max_bytes": 16384},
    "heldout": {"every": 10, "max_samples": 8},
    "training": {
        "num_workers": 2, "zero_stage": 2, "precision": "float32", "micro_batch": 4, "lr": 0.003,
        "warmup_steps": 3, "max_steps": 30, "log_every": 5, "eval_every": 30, "checkpoint_every": 30,
        "keep_checkpoints": 1, "shuffle_buffer": 64,
    },
    "submit": {"max_fills": 5, "max_samples": 64, "progress_interval_s": 5},
}

# Fields the cycle sets itself (paths under cycle.folder, its own commit step): a recipe that
# set one would be silently overruled, so it is refused instead.
_DERIVED_FIELDS = {
    "driver": ("state_path",), "training": ("storage_path",), "scoring": ("cache_dir",),
    "export": ("dir", "after_training", "commit", "rounds"),
}


class CycleConfig(JobConfig):
    """The whole lifecycle on a fresh simulated network: fund, train, commit, reveal, submit, claim."""

    kind: Literal["cycle"] = "cycle"
    cycle: CycleSection = Field(default_factory=CycleSection)
    model: ArchitectureSettings | None = Field(default=None, description="must be the network's (default: it is)")
    data: DataConfig
    heldout: HeldoutSection = Field(default_factory=HeldoutSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    export: ExportSection = Field(default_factory=ExportSection)
    scoring: ScoringSection = Field(default_factory=ScoringSection)
    submit: SubmitSection = Field(default_factory=SubmitSection)

    @model_validator(mode="before")
    @classmethod
    def _quick_defaults(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        merged = dict(raw)
        for section, defaults in _CYCLE_DEFAULTS.items():
            given = raw.get(section)
            if section == "data" and given is not None:
                continue  # a data source replaces the bundled one entirely
            merged[section] = {**defaults, **given} if isinstance(given, dict) else (given or dict(defaults))
        return merged

    @field_validator("chain")
    @classmethod
    def _sim_only(cls, value: ChainConfig) -> ChainConfig:
        if value.network != "sim":
            raise ValueError(f"the cycle runs on the embedded simulated network only (got network {value.network!r})")
        if "path" in value.sim.model_fields_set:
            raise ValueError("sim.path is kept under cycle.folder (sim/); set cycle.folder instead")
        return value

    @field_validator("wallet", "storage")
    @classmethod
    def _made_by_the_cycle(cls, value: BaseModel, info: ValidationInfo) -> BaseModel:
        if value.model_fields_set:
            raise ValueError(
                f"the cycle makes its own {info.field_name} under cycle.folder; remove this section"
            )
        return value

    @field_validator("driver", "training", "export", "scoring")
    @classmethod
    def _paths_in_folder(cls, value: BaseModel, info: ValidationInfo) -> BaseModel:
        for name in _DERIVED_FIELDS[str(info.field_name)]:
            if name in value.model_fields_set:
                hint = "set cycle.folder instead" if name in ("state_path", "storage_path", "cache_dir", "dir") else \
                    "the cycle exports and commits once itself; remove it"
                raise ValueError(f"{name} is the cycle's to set; {hint}")
        return value

    @field_validator("model")
    @classmethod
    def _network_shape(cls, value: ArchitectureSettings | None, info: ValidationInfo) -> ArchitectureSettings | None:
        chain = info.data.get("chain")
        if value is not None and chain is not None and value.shape() != chain.sim.architecture.shape():
            raise ValueError("a committed model must have the network's shape; set chain.sim.architecture instead")
        return value

    # -- the configs of the steps, every path absolute under the folder ----------------------

    @property
    def folder(self) -> Path:
        return self.cycle.folder.expanduser().resolve()

    def _shared(self) -> dict[str, Any]:
        folder = self.folder
        sim = self.chain.sim.model_copy(update={"path": folder / "sim"})
        return {
            "chain": self.chain.model_copy(update={"sim": sim}),
            "storage": StorageConfig(kind="local", local=LocalStorageConfig(root=sim.blob_dir, base_url=sim.blob_url)),
            "wallet": WalletConfig(key_file=folder / "wallet.key"),
            "driver": self.driver.model_copy(update={"state_path": folder / "driver.db"}),
        }

    def train_config(self) -> TrainConfig:
        base = Path.cwd()
        heldout = self.heldout
        if heldout.data is not None:
            heldout = heldout.model_copy(update={"data": heldout.data.with_absolute_paths(base)})
        return TrainConfig(
            **self._shared(), model=self.model, data=self.data.with_absolute_paths(base), heldout=heldout,
            training=self.training.model_copy(update={"storage_path": str(self.folder / "train")}),
            export=self.export.model_copy(update={"dir": self.folder / "artifacts"}),
        )

    def submit_config(self) -> SubmitConfig:
        """Also the driver actor's config: the one process that signs for the cycle's wallet."""
        return SubmitConfig(
            **self._shared(), data=self.data.with_absolute_paths(Path.cwd()),
            scoring=self.scoring.model_copy(update={"cache_dir": self.folder / "model-cache"}),
            submit=self.submit,
        )


def driver_config(config: JobConfig) -> JobConfig:
    """The config a wallet's driver actor is made from: a cycle recipe's lives under its folder."""
    return config.submit_config() if isinstance(config, CycleConfig) else config


JOB_CONFIGS: dict[str, type[JobConfig]] = {
    "run": RunConfig,
    "submit": SubmitConfig,
    "train": TrainConfig,
    "sweep": SweepConfig,
    "cycle": CycleConfig,
}
