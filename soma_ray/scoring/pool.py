"""The scoring pool on Ray: a byte source streamed by Ray Data through an actor pool of scorers.

One long-running read task turns the configured `DataConfig` into blocks of samples (it runs on
the driver's node, where local files live; Hugging Face and S3 sources read from anywhere), and
the plan's models are split into shards that fit one actor (`scoring.shards`): one `map_batches`
stage of `ScoringActor`s per shard, chained, each actor holding a `ModelStore` with its shard's
models resident for the whole epoch (its own node-local disk cache) and the noise bank. Ray Data's streaming executor bounds the blocks in
flight, so an endless stream runs in bounded memory. Actors restart and their in-flight batches
are retried if one dies; results carry the sample id, so the consumer can drop a repeat.
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import ray
import torch
from ray.data import ActorPoolStrategy, Datasource, ReadTask
from ray.data.block import BlockMetadata
from soma_models.v1.torch import ModelConfig

from soma_ray.chain.types import Manifest, Target
from soma_ray.cluster_reach import autoscaler_reach
from soma_ray.data.config import DataConfig
from soma_ray.data.sources import build_source
from soma_ray.scoring.config import ScoringSection
from soma_ray.scoring.evaluate import Evaluation, Precision, evaluate
from soma_ray.scoring.hits import scan
from soma_ray.scoring.shards import (
    GIB,
    Shard,
    device_memory_bytes,
    plan_shards,
    resident_models,
    stage_demand,
    wait_for_nodes,
)
from soma_ray.scoring.sigreg import NoiseBank
from soma_ray.scoring.store import ModelStore, expected_tensors, max_weights_bytes
from soma_ray.storage.fetcher import USER_POLICY, FetchPolicy

log = logging.getLogger(__name__)
# The one read task mostly waits on I/O; a whole CPU for it would starve the scorers on a
# small node (actors × CPUs = node CPUs would never start streaming).
READ_TASK_CPUS = 0.25


@dataclass(frozen=True)
class ScoringPlan:
    """What one pipeline scores against: the models of a target snapshot and their weights."""

    model_config: dict[str, Any]
    manifests: dict[str, Manifest]
    targets: list[Target] = field(default_factory=list)  # for the bf16 pre-filter only
    seed: int = 0
    # How weights URLs are read: `policy_for(network)` (http(s) only on every real network).
    fetch_policy: FetchPolicy = USER_POLICY


class ByteStreamDatasource(Datasource):
    """A `DataConfig` source as one streaming read task yielding blocks of (sample_id, data)."""

    def __init__(self, config: DataConfig, block_samples: int) -> None:
        self.config = config
        self.block_samples = block_samples

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(self, parallelism: int, *args: Any, **kwargs: Any) -> list[ReadTask]:
        config, size = self.config, self.block_samples

        def read() -> Iterator[pa.Table]:
            counter = itertools.count()
            source = build_source(config)
            while block := list(itertools.islice(source, size)):
                ids = [next(counter) for _ in block]
                yield pa.table({"sample_id": pa.array(ids, pa.int64()), "data": pa.array(block, pa.binary())})

        metadata = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=None)
        return [ReadTask(read, metadata)]


class ScoringActor:
    """A Ray Data UDF: one stage of the pool, scoring each batch with its shard's models.

    Columns are the plan's sorted model list: `losses` [n, M] and `embeddings` [n, M, D] (NaN
    where a model is unavailable), created by the first stage and filled in by each stage at its
    shard's columns; every other column passes through. Each stage also writes `scorer` (its
    actor's tag) and `loads` (that actor's loads of the model so far) at its columns, for
    `LoadTally`. The store keeps the whole shard resident, so each model loads once per actor.

    bf16 pre-filter, per stage: a row is re-scored in float32 by this stage's models if some
    target comes near it by this stage's models alone, or an earlier stage already chose it
    (`near`, carried along). Rows it skips get loss -inf for its models: in `scan`, a target
    listing such a model then takes it as the winner and finds no valid distance, so a target is
    never decided on part of its models (a row chosen only by a later stage is lost for the
    targets listing an earlier stage's models — fewer hits, never a wrong winner).
    """

    def __init__(self, plan: ScoringPlan, settings: ScoringSection, shard: Shard | None = None) -> None:
        use_gpu = settings.num_gpus_per_actor > 0 and torch.cuda.is_available()
        device = torch.device("cuda" if use_gpu else "cpu")
        if use_gpu:
            torch.backends.cuda.matmul.allow_tf32 = True  # what the official CUDA scorer does (§1.4)
            torch.backends.cudnn.allow_tf32 = True
        self.plan, self.settings = plan, settings
        config = ModelConfig(dropout_rate=0.0, **plan.model_config)
        self.dim = config.embedding_dim
        self.all_ids = sorted(plan.manifests)
        self.shard = shard or Shard(0, tuple(self.all_ids), tuple(range(len(self.all_ids))))
        self.model_ids = list(self.shard.model_ids)
        self.store = ModelStore(
            Path(settings.cache_dir), config, max_resident=resident_models(settings.max_resident_models, self.shard), device=device,
            policy=plan.fetch_policy,
        )
        self.noise = NoiseBank(self.dim, device, plan.seed)
        self.unavailable: dict[str, str] = {}
        self.tag = secrets.randbits(63) | 1  # never 0: 0 marks "no stage scored this column"

    def _evaluate(self, model_id: str, samples: Sequence[bytes], precision: Precision) -> list[Evaluation] | None:
        if model_id in self.unavailable:
            return None
        try:
            model = self.store.get(model_id, self.plan.manifests[model_id])
        except Exception as exc:  # corrupt / truncated / mis-keyed: skip the model, never submit with it
            self.unavailable[model_id] = str(exc)
            log.warning("skipping model %s: %s", model_id, exc)
            return None
        return evaluate(
            model, samples, self.plan.seed, rows_per_forward=self.settings.rows_per_forward,
            precision=precision, noise=self.noise,
        )

    def _column(self, batch: dict[str, np.ndarray], name: str, shape: tuple[int, ...], fill: Any, dtype: Any) -> Any:
        """The batch's column if an earlier stage made it (copied: Ray's arrays may be read-only)."""
        if name in batch:
            return np.array(batch[name], dtype=dtype, copy=True)
        return np.full(shape, fill, dtype=dtype)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        samples = [bytes(d) for d in batch["data"]]
        n, m = len(samples), len(self.all_ids)
        losses = self._column(batch, "losses", (n, m), np.nan, np.float32)
        embeddings = self._column(batch, "embeddings", (n, m, self.dim), np.nan, np.float32)
        scorer = self._column(batch, "scorer", (n, m), 0, np.int64)
        loads = self._column(batch, "loads", (n, m), 0, np.int64)
        near = self._column(batch, "near", (n,), False, np.bool_)
        rows = list(range(n))
        if self.settings.precision == "bf16-prefilter":
            near[self._prefilter(samples)] = True
            rows = [int(i) for i in np.flatnonzero(near)]
        chosen = [samples[i] for i in rows]
        for model_id, j in zip(self.model_ids, self.shard.columns, strict=True):
            evaluations = self._evaluate(model_id, chosen, "float32") if chosen else []
            if evaluations is not None and model_id not in self.unavailable:
                losses[:, j] = -np.inf  # skipped by the pre-filter (see the class docstring)
                for i, e in zip(rows, evaluations, strict=True):
                    losses[i, j] = e.loss
                    embeddings[i, j] = e.embedding
            scorer[:, j] = self.tag
            loads[:, j] = self.store.stats.model_loads.get(model_id, 0)
        return {
            **{k: np.asarray(v) for k, v in batch.items()},
            "sample_id": np.asarray(batch["sample_id"]),
            "data": np.asarray(samples, dtype=object),
            "losses": losses,
            "embeddings": embeddings,
            "scorer": scorer,
            "loads": loads,
            "near": near,
        }

    def _prefilter(self, samples: list[bytes]) -> list[int]:
        """bf16 ranks fast; rows near some target's threshold by this stage's models."""
        fast = {mid: e for mid in self.model_ids if (e := self._evaluate(mid, samples, "bf16")) is not None}
        if not fast or not self.plan.targets:
            return []
        result = scan(fast, self.plan.targets)
        limit = np.array([t.distance_threshold for t in self.plan.targets], np.float32) + self.settings.prefilter_margin
        near = (result.distances <= limit[:, None]).any(axis=0)
        return [int(i) for i in np.flatnonzero(near)]


def evaluations_from_batch(batch: dict[str, np.ndarray], model_ids: Sequence[str]) -> dict[str, list[Evaluation]]:
    """The pool's columns back into `{model_id: [Evaluation per sample]}` for `find_hits`."""
    losses, embeddings = batch["losses"], batch["embeddings"]
    out: dict[str, list[Evaluation]] = {}
    for j, model_id in enumerate(model_ids):
        out[model_id] = [
            Evaluation(float(losses[i, j]), embeddings[i, j], None if not math.isnan(losses[i, j]) else "not scored")
            for i in range(len(losses))
        ]
    return out


def shards_for(plan: ScoringPlan, settings: ScoringSection) -> list[Shard]:
    """The plan's models split into stages that fit one actor (see `shards.plan_shards`).

    A manifest's size is a stranger's claim: it counts for at most the architecture's exact
    weights bytes, so a lying manifest cannot stop the plan (the store refuses that model itself)."""
    bound = max_weights_bytes(expected_tensors(ModelConfig(dropout_rate=0.0, **plan.model_config)))
    return plan_shards(
        list(plan.manifests), {m: min(manifest.size, bound) for m, manifest in plan.manifests.items()},
        device_bytes=device_memory_bytes(settings.device_memory_gb, settings.num_gpus_per_actor),
        reserve_bytes=int(settings.activation_reserve_gb * GIB),
        models_per_actor=settings.models_per_actor,
    )


def check_cluster_fits(stages: int, settings: ScoringSection) -> None:
    """Fail in one line, before any actor starts, when the stages can never all run on this
    cluster (Ray Data would otherwise wait forever for actors that never get resources); log when
    they wait for an autoscaler's nodes (`shards.wait_for_nodes`)."""
    demand = stage_demand(stages, settings.min_actors, settings.num_cpus_per_actor, settings.num_gpus_per_actor,
                          settings.resources_per_actor, READ_TASK_CPUS)
    now = ray.cluster_resources()  # type: ignore[no-untyped-call]
    waiting = wait_for_nodes(stages, settings.min_actors, demand, now, autoscaler_reach(),
                             autoscaling=settings.autoscaling)
    if waiting:
        log.info("%s", waiting)


def _unscored(dim: int) -> Any:
    """The columns of a plan without models (no stage to make them)."""

    def columns(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["sample_id"])
        return {**batch, "losses": np.zeros((n, 0), np.float32), "embeddings": np.zeros((n, 0, dim), np.float32),
                "scorer": np.zeros((n, 0), np.int64), "loads": np.zeros((n, 0), np.int64)}

    return columns


def score_stream(
    data: DataConfig, plan: ScoringPlan, settings: ScoringSection
) -> Iterator[dict[str, np.ndarray]]:
    """Stream scored batches (numpy columns) from the pool; Ray must be initialised.

    One `map_batches` stage per shard, chained: every sample flows through every stage, and the
    batch leaving the last one holds every model's columns (hits are the consumer's job).
    """
    shards = shards_for(plan, settings)
    log.info("scoring with %d models in %d stages: %s", len(plan.manifests), len(shards),
             ", ".join(str(len(s.model_ids)) for s in shards) or "-")
    check_cluster_fits(len(shards), settings)
    here = ray.get_runtime_context().get_node_id()
    dataset = ray.data.read_datasource(
        ByteStreamDatasource(data, settings.batch_samples),
        label_selector={"ray.io/node-id": here},  # local paths exist on the driver's node
        num_cpus=READ_TASK_CPUS,
    )
    if not shards:
        dataset = dataset.map_batches(_unscored(int(plan.model_config["embedding_dim"])), batch_format="numpy")
    for shard in shards:
        dataset = dataset.map_batches(
            ScoringActor,
            fn_constructor_kwargs={"plan": plan, "settings": settings, "shard": shard},
            batch_size=settings.batch_samples,
            batch_format="numpy",
            compute=ActorPoolStrategy(min_size=settings.min_actors, max_size=settings.max_actors),
            num_gpus=settings.num_gpus_per_actor,
            num_cpus=settings.num_cpus_per_actor,
            resources=settings.resources_per_actor or None,
            # Ray Data's actor pools default to max_restarts=-1 and max_task_retries=-1: a dead actor
            # is replaced and its in-flight batch is scored again (tested in tests/scoring/test_pool.py).
        )
    yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
