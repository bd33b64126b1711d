"""The scoring pool on Ray: a byte source streamed by Ray Data through an actor pool of scorers.

One long-running read task turns the configured `DataConfig` into blocks of samples (it runs on
the driver's node, where local files live; Hugging Face and S3 sources read from anywhere), and
`map_batches` hands them to `ScoringActor`s, each holding a `ModelStore` (its own node-local disk
cache, resident models) and the noise bank. Ray Data's streaming executor bounds the blocks in
flight, so an endless stream runs in bounded memory. Actors restart and their in-flight batches
are retried if one dies; results carry the sample id, so the consumer can drop a repeat.
"""

from __future__ import annotations

import itertools
import logging
import math
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
from soma_ray.data.config import DataConfig
from soma_ray.data.sources import build_source
from soma_ray.scoring.config import ScoringSection
from soma_ray.scoring.evaluate import Evaluation, Precision, evaluate
from soma_ray.scoring.hits import scan
from soma_ray.scoring.sigreg import NoiseBank
from soma_ray.scoring.store import ModelStore
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
    """A Ray Data UDF: scores each batch with every available model of the plan.

    Returns per sample the f32 loss and embedding for each model (NaN where a model is
    unavailable or the sample was rejected) — the hit finder turns these into hits for any
    target listing those models.
    """

    def __init__(self, plan: ScoringPlan, settings: ScoringSection) -> None:
        use_gpu = settings.num_gpus_per_actor > 0 and torch.cuda.is_available()
        device = torch.device("cuda" if use_gpu else "cpu")
        if use_gpu:
            torch.backends.cuda.matmul.allow_tf32 = True  # what the official CUDA scorer does (§1.4)
            torch.backends.cudnn.allow_tf32 = True
        self.plan, self.settings = plan, settings
        config = ModelConfig(dropout_rate=0.0, **plan.model_config)
        self.dim = config.embedding_dim
        self.store = ModelStore(
            Path(settings.cache_dir), config, max_resident=settings.max_resident_models, device=device,
            policy=plan.fetch_policy,
        )
        self.model_ids = sorted(plan.manifests)
        self.noise = NoiseBank(self.dim, device, plan.seed)
        self.unavailable: dict[str, str] = {}

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

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        samples = [bytes(d) for d in batch["data"]]
        n, m = len(samples), len(self.model_ids)
        losses = np.full((n, m), np.nan, dtype=np.float32)
        embeddings = np.full((n, m, self.dim), np.nan, dtype=np.float32)
        rows = list(range(n))
        if self.settings.precision == "bf16-prefilter":
            rows = self._prefilter(samples)
        if rows:
            chosen = [samples[i] for i in rows]
            for j, model_id in enumerate(self.model_ids):
                evaluations = self._evaluate(model_id, chosen, "float32")
                for i, e in zip(rows, evaluations or [], strict=False):
                    losses[i, j] = e.loss
                    embeddings[i, j] = e.embedding
        return {
            "sample_id": np.asarray(batch["sample_id"]),
            "data": np.asarray(samples, dtype=object),
            "losses": losses,
            "embeddings": embeddings,
        }

    def _prefilter(self, samples: list[bytes]) -> list[int]:
        """bf16 ranks fast; only samples near some target's threshold are re-scored in float32."""
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


def score_stream(
    data: DataConfig, plan: ScoringPlan, settings: ScoringSection
) -> Iterator[dict[str, np.ndarray]]:
    """Stream scored batches (numpy columns) from the pool; Ray must be initialised."""
    here = ray.get_runtime_context().get_node_id()
    dataset = ray.data.read_datasource(
        ByteStreamDatasource(data, settings.batch_samples),
        label_selector={"ray.io/node-id": here},  # local paths exist on the driver's node
        num_cpus=READ_TASK_CPUS,
    ).map_batches(
        ScoringActor,
        fn_constructor_kwargs={"plan": plan, "settings": settings},
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
