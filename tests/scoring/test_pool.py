"""The Ray scoring pool: results equal `evaluate`, a dead actor loses nothing and repeats nothing,
a corrupt model is skipped, the bf16 pre-filter only ever returns float32 numbers, and the
sharded pool (one stage per shard) equals `evaluate` and survives a killed stage actor."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from soma_ray.chain.sim.genesis import model_config
from soma_ray.data.config import DataConfig
from soma_ray.scoring.config import ScoringSection
from soma_ray.scoring.evaluate import evaluate
from soma_ray.scoring.hits import find_hits
from soma_ray.scoring.loads import LoadTally
from soma_ray.scoring.pool import ScoringPlan, evaluations_from_batch, score_stream
from soma_ray.scoring.shards import ShardError
from soma_ray.scoring.store import ModelStore


@pytest.fixture
def world(tmp_path: Path, served_sim: Any) -> Any:
    sim, _ = served_sim
    targets = asyncio.run(sim.all_targets("open"))
    ids = sorted({m for t in targets for m in t.model_ids})
    manifests = dict(zip(ids, asyncio.run(sim.model_manifests(ids)), strict=True))
    plan = ScoringPlan(model_config=sim.settings.architecture.shape(), manifests=manifests, targets=targets)
    return tmp_path, sim, plan


def corpus(root: Path, count: int, size: int) -> DataConfig:
    rng = np.random.default_rng(11)
    lines = [bytes(rng.integers(97, 123, size, dtype=np.uint8)) for _ in range(count)]
    path = root / "corpus.txt"
    path.write_bytes(b"\n".join(lines))
    return DataConfig(source="text", path=path, text_unit="line", max_bytes=size)


def collect(data: DataConfig, plan: ScoringPlan, settings: ScoringSection) -> list[dict[str, np.ndarray]]:
    return list(score_stream(data, plan, settings))


def test_pool_results_equal_direct_evaluation(world: Any, ray_session: Any) -> None:
    root, sim, plan = world
    data = corpus(root, 20, 300)
    batches = collect(data, plan, ScoringSection(batch_samples=8, cache_dir=root / "cache"))
    ids = np.concatenate([b["sample_id"] for b in batches])
    assert sorted(ids.tolist()) == list(range(20))
    store = ModelStore(root / "cache2", model_config(sim.settings.architecture))
    model_ids = sorted(plan.manifests)
    for batch in batches:
        for j, model_id in enumerate(model_ids):
            direct = evaluate(store.get(model_id, plan.manifests[model_id]), list(batch["data"]))
            np.testing.assert_allclose(batch["losses"][:, j], [e.loss for e in direct], rtol=1e-6)
            np.testing.assert_allclose(batch["embeddings"][:, j], np.stack([e.embedding for e in direct]), rtol=1e-5, atol=1e-6)


def _kill_one_scoring_actor() -> int:
    """SIGKILL a live scoring actor process (Ray titles them `ray::MapWorker(...)`)."""
    for _ in range(100):
        for proc in psutil.process_iter(["pid", "cmdline"]):
            title = " ".join(proc.info["cmdline"] or [])
            if "MapWorker" in title and "ScoringActor" in title:
                os.kill(proc.info["pid"], signal.SIGKILL)
                return int(proc.info["pid"])
        time.sleep(0.1)
    raise AssertionError("no scoring actor found to kill")


def test_a_killed_actor_loses_and_repeats_nothing(world: Any, ray_session: Any) -> None:
    root, _, plan = world
    data = corpus(root, 24, 6000)  # ~1 s of work per batch, so the kill lands mid-batch
    settings = ScoringSection(batch_samples=4, cache_dir=root / "cache")
    seen: list[int] = []
    killed: list[int] = []
    for batch in score_stream(data, plan, settings):
        seen.extend(batch["sample_id"].tolist())
        if not killed:
            killer = threading.Thread(target=lambda: killed.append(_kill_one_scoring_actor()))
            killer.start()
            killer.join()
        assert np.isfinite(batch["losses"]).all()
    assert killed, "the test must actually kill an actor"
    assert sorted(seen) == list(range(24)), "every sample scored exactly once"


def test_a_corrupt_model_is_skipped_and_never_wins(world: Any, ray_session: Any) -> None:
    root, _, plan = world
    model_ids = sorted(plan.manifests)
    bad = model_ids[0]
    other = plan.manifests[model_ids[1]]
    manifests = {**plan.manifests, bad: replace(plan.manifests[bad], checksum=other.checksum)}
    batches = collect(corpus(root, 8, 200), replace(plan, manifests=manifests), ScoringSection(cache_dir=root / "c"))
    for batch in batches:
        assert np.isnan(batch["losses"][:, 0]).all() and np.isfinite(batch["losses"][:, 1:]).all()
        evaluations = evaluations_from_batch(batch, model_ids)
        hits = find_hits(evaluations, plan.targets)
        assert hits and all(h.model_id != bad for h in hits)


def test_bf16_prefilter_returns_only_float32_confirmed_candidates(world: Any, ray_session: Any) -> None:
    root, sim, plan = world
    data = corpus(root, 12, 400)
    settings = ScoringSection(cache_dir=root / "cache", precision="bf16-prefilter", prefilter_margin=0.0)
    tight = [replace(t, distance_threshold=0.6) for t in plan.targets]  # only some samples come near
    batches = collect(data, replace(plan, targets=tight), settings)
    store = ModelStore(root / "cache2", model_config(sim.settings.architecture))
    model_ids = sorted(plan.manifests)
    confirmed = skipped = 0
    for batch in batches:
        scored = np.isfinite(batch["losses"]).all(axis=1)
        confirmed += int(scored.sum())
        skipped += int((~scored).sum())
        for j, model_id in enumerate(model_ids):
            exact = evaluate(store.get(model_id, plan.manifests[model_id]), list(batch["data"]))
            for i in np.flatnonzero(scored):
                assert batch["losses"][i, j] == pytest.approx(exact[i].loss, rel=1e-6)  # float32, not bf16
    assert confirmed + skipped == 12


# -- the sharded pool (issue 14): one stage per shard ------------------------------------------


def test_sharded_pool_equals_evaluate_and_loads_each_model_once_per_actor(world: Any, ray_session: Any) -> None:
    root, sim, plan = world
    model_ids = sorted(plan.manifests)
    assert len(model_ids) >= 2, "needs at least two stages"
    settings = ScoringSection(batch_samples=4, models_per_actor=1, num_cpus_per_actor=0.25, cache_dir=root / "cache")  # every stage resident on 2 CPUs
    batches = collect(corpus(root, 16, 300), plan, settings)
    assert sorted(np.concatenate([b["sample_id"] for b in batches]).tolist()) == list(range(16))
    tally = LoadTally()
    store = ModelStore(root / "cache2", model_config(sim.settings.architecture))
    for batch in batches:
        tally.update(batch)
        assert batch["losses"].shape[1] == len(model_ids)
        for j, model_id in enumerate(model_ids):
            direct = evaluate(store.get(model_id, plan.manifests[model_id]), list(batch["data"]))
            np.testing.assert_allclose(batch["losses"][:, j], [e.loss for e in direct], rtol=1e-6)
            np.testing.assert_allclose(batch["embeddings"][:, j], np.stack([e.embedding for e in direct]),
                                       rtol=1e-5, atol=1e-6)
    assert tally.max_per_actor == 1  # no actor ever reloads a model
    assert tally.total >= len(model_ids)  # every stage's model loaded (once per actor of that stage)


def test_a_killed_actor_in_one_stage_is_replaced_and_loses_and_repeats_nothing(world: Any, ray_session: Any) -> None:
    root, _, plan = world
    data = corpus(root, 24, 6000)  # ~1 s of work per batch, so the kill lands mid-batch
    settings = ScoringSection(batch_samples=4, models_per_actor=1, num_cpus_per_actor=0.25, cache_dir=root / "cache")  # every stage resident on 2 CPUs
    seen: list[int] = []
    killed: list[int] = []
    tally = LoadTally()
    for batch in score_stream(data, plan, settings):
        seen.extend(batch["sample_id"].tolist())
        tally.update(batch)
        if not killed:  # one actor of one stage (every stage's actors are ScoringActors)
            killer = threading.Thread(target=lambda: killed.append(_kill_one_scoring_actor()))
            killer.start()
            killer.join()
        assert np.isfinite(batch["losses"]).all(), "every stage scored every sample of the batch"
    assert killed, "the test must actually kill an actor"
    assert sorted(seen) == list(range(24)), "every sample scored exactly once"
    assert tally.max_per_actor == 1  # the replacement is a new actor that loads its shard once


def test_stages_that_cannot_fit_the_cluster_fail_in_one_line_instead_of_hanging(world: Any, ray_session: Any) -> None:
    """Four 1-CPU stages on the session's 2-CPU Ray: Ray Data would wait forever for the actors."""
    root, _, plan = world
    assert len(plan.manifests) >= 3, "needs more stages than the cluster has CPUs"
    settings = ScoringSection(models_per_actor=1, num_cpus_per_actor=1.0, cache_dir=root / "cache")
    started = time.monotonic()
    with pytest.raises(ShardError) as err:
        collect(corpus(root, 4, 100), plan, settings)
    assert time.monotonic() - started < 30
    text = str(err.value)
    assert "\n" not in text and f"{len(plan.manifests)} stage(s)" in text and "(the cluster has 2)" in text
