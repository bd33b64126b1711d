"""What a recipe needs of the set-up, read from its typed config: which checks must pass."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from soma_ray.config import CycleConfig, JobConfig, SubmitConfig, TrainConfig
from soma_ray.data.config import DataConfig
from soma_ray.protocol.architecture import ArchitectureSettings, default_architecture

# `dataset:` values that name a local file format rather than a Hub repository.
LOCAL_BUILDERS = frozenset({"json", "parquet", "csv", "text", "arrow"})
# Sources whose default dataset is gated on the Hub (The Stack v2 needs accepted terms and a token).
GATED_SOURCES = frozenset({"stack_v2"})
_JOBS_ON_RAY = frozenset({"submit", "train", "sweep", "cycle"})


@dataclass(frozen=True)
class Needs:
    kind: str
    ray: bool = False
    ray_resources: dict[str, float] = field(default_factory=dict)  # the least the job asks for at once
    gpu: bool = False
    wallet: bool = False
    chain: bool = True
    s3: bool = False
    hub_dataset: str | None = None  # a Hugging Face Hub dataset the recipe streams
    hub_gated: bool = False
    model_cache: Path | None = None
    architecture: ArchitectureSettings | None = None


def _hub_dataset(data: DataConfig) -> str | None:
    if data.source == "stack_v2":
        from soma_ray.data.config import STACK_V2_DATASET

        return data.dataset or STACK_V2_DATASET
    if data.source == "huggingface" and data.dataset and data.dataset not in LOCAL_BUILDERS:
        return data.dataset
    return None


def needs_of(config: JobConfig) -> Needs:
    kind = config.kind
    resources: defaultdict[str, float] = defaultdict(float)
    gpu = False
    wallet = False
    data: DataConfig | None = None
    cache: Path | None = None
    architecture: ArchitectureSettings | None = None
    sim_arch = config.chain.sim.architecture if config.chain.network == "sim" else None
    if isinstance(config, SubmitConfig):
        scoring = config.scoring
        for name, amount in {"GPU": scoring.num_gpus_per_actor, **scoring.resources_per_actor}.items():
            resources[name] += amount * scoring.min_actors
        gpu = scoring.num_gpus_per_actor > 0
        wallet, data, cache = True, config.data, scoring.cache_dir
        architecture = default_architecture(scoring.architecture, simulated=sim_arch)
    elif isinstance(config, TrainConfig):
        training = config.training
        per_worker = {"GPU": training.gpus_per_worker if training.use_gpu else 0.0, **training.resources_per_worker}
        for name, amount in per_worker.items():
            resources[name] += amount * training.num_workers
        gpu, wallet, data = training.use_gpu, config.export.commit, config.data
    elif isinstance(config, CycleConfig):
        data = config.data
        cache, architecture = config.folder / "model-cache", config.chain.sim.architecture
    hub = _hub_dataset(data) if data is not None else None
    return Needs(
        kind=kind,
        ray=kind in _JOBS_ON_RAY,
        ray_resources={k: v for k, v in resources.items() if v > 0},
        gpu=gpu,
        wallet=wallet,
        chain=kind != "cycle",  # the cycle makes a fresh network of its own
        s3=config.storage.kind == "s3",
        hub_dataset=hub,
        hub_gated=data is not None and data.source in GATED_SOURCES,
        model_cache=cache,
        architecture=architecture,
    )
