"""The recipes of a training run (`kind: train`) and of a sweep (`kind: sweep`), and their sections.

Flat sections with the names a DeepSpeed / Ray Train user expects; every field has a default
that works on a laptop, so a recipe only states what it changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from soma_ray.data.config import DataConfig
from soma_ray.driver.config import JobConfig
from soma_ray.paths import absolute, absolute_location
from soma_ray.protocol.architecture import ArchitectureSettings, default_architecture

Precision = Literal["float32", "bf16"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HeldoutSection(_Section):
    """Samples kept out of training and scored with the exact scorer (the network's number).

    By default every `every`-th sample of the training source (chosen by content hash, so the
    split does not depend on shuffling) is held out, up to `max_samples`. Give `data` to use a
    separate source instead.
    """

    every: int = Field(default=20, ge=2, description="hold out 1 sample in `every` (by Blake2b of its bytes)")
    max_samples: int = Field(default=64, ge=1)
    data: DataConfig | None = Field(default=None, description="a separate held-out source (optional)")

    def with_absolute_paths(self, base: Path) -> HeldoutSection:
        if self.data is None:
            return self
        return self.model_copy(update={"data": self.data.with_absolute_paths(base)})


class WarmStartSection(_Section):
    """Start from existing weights instead of a random init.

    `path` (a canonical safetensors file), `url` (http(s):// or s3:// to a canonical safetensors
    file) or `model_id` (a network model, fetched and decrypted through the chain layer).
    """

    path: Path | None = None
    url: str | None = None
    model_id: str | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> WarmStartSection:
        given = [name for name in ("path", "url", "model_id") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one of path, url, model_id (got {', '.join(given)})")
        if self.url is not None and not self.url.startswith(("http://", "https://", "s3://")):
            raise ValueError("url must start with http://, https:// or s3://")
        return self

    @property
    def enabled(self) -> bool:
        return self.path is not None or self.url is not None or self.model_id is not None


class TrainingSection(_Section):
    """Ray Train + DeepSpeed: scaling, optimisation, checkpoints."""

    # Run identity and storage (Ray Train RunConfig).
    name: str | None = Field(default=None, description="run name; re-use it to resume, leave empty for a fresh run")
    storage_path: str = Field(default=".soma-ray/train", description="local folder or s3://bucket/prefix")

    # Scaling (Ray Train ScalingConfig).
    num_workers: int = Field(default=1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(default=1.0, gt=0)
    gpus_per_worker: float = Field(default=1.0, ge=0)
    resources_per_worker: dict[str, float] = Field(default_factory=dict, description="custom Ray resources")
    max_failures: int = Field(default=2, ge=-1, description="worker-failure restarts (-1: unlimited)")

    # DeepSpeed.
    zero_stage: Literal[1, 2, 3] = 2
    precision: Precision = "bf16"
    micro_batch: int = Field(default=4, ge=1, description="1024-token sequences per worker per micro-step")
    grad_accum: int = Field(default=1, ge=1)
    grad_clip: float = Field(default=1.0, ge=0, description="0 disables clipping")

    # AdamW + warmup/cosine schedule.
    lr: float = Field(default=3e-4, gt=0)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    warmup_steps: int = Field(default=100, ge=0)
    max_steps: int = Field(default=1000, ge=1)
    weight_decay: float = Field(default=0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    activation_checkpointing: bool = Field(
        default=False, description="recompute each layer in the backward pass: less memory, ~1/3 more compute"
    )
    dropout: float = Field(
        default=0.0, ge=0, lt=1, description="feed-forward dropout only (attention runs fused, without dropout)"
    )

    # Objective and data order.
    sigreg_noise: Literal["random", "scorer"] = Field(
        default="random", description="random projections each step, or the scorer's seed-0 noise"
    )
    seed: int = 0
    shuffle_buffer: int = Field(default=1024, ge=1, description="samples in the streaming shuffle buffer")

    # Logging, evaluation, checkpoints.
    log_every: int = Field(default=10, ge=1)
    eval_every: int = Field(default=200, ge=1, description="held-out exact-scorer loss every N steps")
    checkpoint_every: int = Field(default=200, ge=1, description="checkpoint every N steps")
    checkpoint_minutes: float = Field(default=30.0, gt=0, description="and at least every T minutes")
    keep_checkpoints: int = Field(default=3, ge=1, description="best by held-out loss (the latest is always kept)")
    peak_tflops: float | None = Field(default=None, gt=0, description="per-device peak for MFU (default: table)")

    @field_validator("storage_path")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if "://" in value and not value.startswith(("s3://", "gs://", "file://")):
            raise ValueError("must be a local folder or an s3://, gs:// or file:// URI")
        return value

    @model_validator(mode="after")
    def _warmup_fits(self) -> TrainingSection:
        if self.warmup_steps >= self.max_steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be below max_steps ({self.max_steps})")
        return self


class ExportSection(_Section):
    """Where the commit artifacts go (weights, embedding, manifest)."""

    dir: Path = Path(".soma-ray/artifacts")
    after_training: bool = Field(default=True, description="export the best checkpoint when training ends")
    commit: bool = Field(
        default=False, description="hand the export to the wallet's driver to commit (it reveals next epoch)"
    )
    rounds: int = Field(
        default=1, ge=1, description="with commit: train again from the revealed weights after each reveal"
    )


SweepDistribution = Literal["grid", "choice", "uniform", "loguniform", "randint"]


class SweepParameter(_Section):
    """One searched field: `grid`/`choice` take `values`; `uniform`/`loguniform`/`randint` take low/high."""

    kind: SweepDistribution = "grid"
    values: list[Any] | None = None
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _shape(self) -> SweepParameter:
        if self.kind in ("grid", "choice"):
            if not self.values:
                raise ValueError(f"{self.kind} needs a non-empty `values` list")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError(f"{self.kind} needs `low` < `high`")
        elif self.kind == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs `low` > 0")
        return self


class SweepSection(_Section):
    """A Ray Tune search over training fields (dotted paths such as `training.lr`)."""

    name: str | None = Field(default=None, description="experiment name (default: fresh)")
    num_samples: int = Field(default=1, ge=1, description="random draws (each repeats the whole grid)")
    max_concurrent_trials: int | None = Field(default=None, ge=1, description="default: what the cluster fits")
    parameters: dict[str, SweepParameter]

    @field_validator("parameters")
    @classmethod
    def _training_fields(cls, value: dict[str, SweepParameter]) -> dict[str, SweepParameter]:
        if not value:
            raise ValueError("give at least one parameter to search")
        for path in value:
            section, _, field = path.partition(".")
            if section not in ("training", "heldout") or not field:
                raise ValueError(f"{path!r}: only training.* and heldout.* fields can be searched")
            owner = TrainingSection if section == "training" else HeldoutSection
            if field not in owner.model_fields:
                raise ValueError(f"{path!r}: {owner.__name__} has no field {field!r}")
        return value


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

    def with_absolute_paths(self, base: Path) -> Self:
        """Every local path of the recipe made absolute against `base` (URIs unchanged)."""
        warm_start = self.warm_start
        if warm_start.path is not None:
            warm_start = warm_start.model_copy(update={"path": absolute(warm_start.path, base)})
        location = absolute_location(self.training.storage_path, base)
        return super().with_absolute_paths(base).model_copy(update={
            "data": self.data.with_absolute_paths(base), "heldout": self.heldout.with_absolute_paths(base),
            "warm_start": warm_start, "training": self.training.model_copy(update={"storage_path": location}),
            "export": self.export.model_copy(update={"dir": absolute(self.export.dir, base)}),
        })

    @property
    def architecture(self) -> ArchitectureSettings:
        simulated = self.chain.sim.architecture if self.chain.network == "sim" else None
        return default_architecture(self.model, simulated=simulated)


class SweepConfig(TrainConfig):
    """A Ray Tune search around the trainer: one training run per trial, ranked by held-out loss."""

    kind: Literal["sweep"] = "sweep"  # type: ignore[assignment]
    sweep: SweepSection
