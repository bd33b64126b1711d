"""The `scoring:` section of a recipe: the Ray actor pool that scores samples (`scoring.pool`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from soma_ray.protocol.architecture import ArchitectureSettings


class ScoringSection(BaseModel):
    """The Ray actor pool that scores samples (soma_ray.scoring.pool)."""

    model_config = ConfigDict(extra="forbid")

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
    max_resident_models: int | None = Field(
        default=None, ge=1,
        description="models one actor keeps loaded; default its whole shard. Fewer evicts LRU and reloads "
                    "models every batch (only to save memory; bench/scoring.py uses it to replay the old design)",
    )
    autoscaling: bool = Field(
        default=False,
        description="the cluster adds nodes on demand: stages that do not fit it now wait for nodes instead of "
                    "stopping the job with an error (only where no autoscaler's cluster config is found: on the head "
                    "of `ray up`, its node types' max_workers decide)",
    )
    device_memory_gb: float | None = Field(
        default=None, gt=0.0,
        description="memory of one actor's device; default: its share of the GPU the driver sees, else 16 (CPU)",
    )
    activation_reserve_gb: float = Field(
        default=2.0, ge=0.0, description="device memory kept free of weights for activations"
    )
    models_per_actor: int | None = Field(
        default=None, ge=1, description="models per stage (overrides the estimate from memory and model sizes)"
    )
    cache_dir: Path = Path("/tmp/soma-ray/model-cache")
    architecture: ArchitectureSettings | None = Field(
        default=None, description="model shape; default: the simulated network's, or V1 elsewhere"
    )
