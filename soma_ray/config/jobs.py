"""The recipes that span components (`kind: run`, `kind: cycle`) and the registry of every kind.

A job whose work is one component's keeps its recipe beside that component (`training.config`
has train and sweep, `submission.config` has submit); this entry-layer package composes the
rest and maps each `kind:` to its model. Unknown keys are errors everywhere (`extra="forbid"`).
Secrets are `SecretStr`, filled from `${VAR}` references, so they never print and never live in
the YAML itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from soma_ray.chain.config import ChainConfig, WalletConfig
from soma_ray.data.config import DataConfig
from soma_ray.driver.config import JobConfig
from soma_ray.protocol.architecture import ArchitectureSettings
from soma_ray.review.config import ReviewSection
from soma_ray.scoring.config import ScoringSection
from soma_ray.storage.config import LocalStorageConfig, StorageConfig
from soma_ray.submission.config import SubmitConfig, SubmitSection
from soma_ray.training.config import (
    ExportSection,
    HeldoutSection,
    SweepConfig,
    TrainConfig,
    TrainingSection,
)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunSection(Section):
    faucet_requests: int = Field(default=1, ge=0, le=100)
    advance_epochs: int = Field(default=1, ge=0, le=100)


class RunConfig(JobConfig):
    """The main lifecycle job."""

    kind: Literal["run"] = "run"
    run: RunSection = Field(default_factory=RunSection)


class CycleSection(Section):
    folder: Path = Field(
        default=Path(".soma-ray/cycle"),
        description="everything the cycle makes: sim/, wallet.key, driver.db, train/, artifacts/, model-cache/",
    )
    faucet_requests: int = Field(default=3, ge=1, le=100, description="2 SOMA each: stake (1 SOMA) + bonds + fees")
    fresh: bool = Field(default=True, description="wipe `folder` first (only a folder the cycle made)")
    warmup_epochs: int = Field(
        default=0, ge=0, le=50,
        description="epochs the network plays before the wallet joins (with chain.sim.rivals: fills and claims)",
    )
    served: bool = Field(
        default=False,
        description="serve the folder's network behind SOMA's wire protocol (localnet, free ports) and play "
        "every chain call through the official soma-sdk client (SdkChain)",
    )


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
    review: ReviewSection = Field(
        default_factory=ReviewSection, description="the epoch review the cycle writes at the end (review/)")

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
        # Your own bucket is welcome (a dress rehearsal of the real uploads); a local store is
        # the cycle's, under its folder.
        if isinstance(value, StorageConfig) and value.kind == "s3":
            if value.s3 is None:
                raise ValueError("storage.kind is s3 but storage.s3 is missing; add storage.s3.bucket")
            return value
        if value.model_fields_set:
            hint = "remove this section" if info.field_name == "wallet" else \
                "remove this section, or use storage.kind: s3 with your bucket"
            raise ValueError(f"the cycle makes its own {info.field_name} under cycle.folder; {hint}")
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
            "storage": self.storage if self.storage.kind == "s3" else StorageConfig(
                kind="local", local=LocalStorageConfig(root=sim.blob_dir, base_url=sim.blob_url)),
            "wallet": WalletConfig(key_file=folder / "wallet.key"),
            "driver": self.driver.model_copy(update={"state_path": folder / "driver.db"}),
        }

    def train_config(self) -> TrainConfig:
        base = Path.cwd()
        return TrainConfig(
            **self._shared(), model=self.model, data=self.data.with_absolute_paths(base),
            heldout=self.heldout.with_absolute_paths(base),
            training=self.training.model_copy(update={"storage_path": str(self.folder / "train")}),
            export=self.export.model_copy(update={"dir": self.folder / "artifacts"}),
        )

    def submit_config(self) -> SubmitConfig:
        """Also the driver actor's config: the one process that signs for the cycle's wallet."""
        return SubmitConfig(
            **self._shared(), data=self.data.with_absolute_paths(Path.cwd()),
            scoring=self.scoring.model_copy(update={"cache_dir": self.folder / "model-cache"}),
            submit=self.submit, review=self.review,
        )


def driver_config(config: JobConfig) -> JobConfig:
    """The config a wallet's driver actor is made from: a cycle recipe's lives under its folder."""
    return config.submit_config() if isinstance(config, CycleConfig) else config


def review_settings(config: JobConfig) -> ReviewSection:
    """The recipe's `review:` section (the defaults for kinds without one)."""
    found = getattr(config, "review", None)
    return found if isinstance(found, ReviewSection) else ReviewSection()


JOB_CONFIGS: dict[str, type[JobConfig]] = {
    "run": RunConfig,
    "submit": SubmitConfig,
    "train": TrainConfig,
    "sweep": SweepConfig,
    "cycle": CycleConfig,
}
