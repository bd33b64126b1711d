"""The sharded pool below Ray: shard planning, and the stage UDFs chained in-process equal direct
`evaluate` for every (sample, model) pair while each stage loads each of its models once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from soma_models.v1.torch import Model, ModelConfig
from soma_sdk import SomaClient

from soma_ray.chain.types import Manifest, Target, TargetStatus
from soma_ray.protocol.architecture import SMALL_PRESET, v1_architecture
from soma_ray.protocol.commitments import commitment
from soma_ray.scoring.config import ScoringSection
from soma_ray.scoring.evaluate import evaluate
from soma_ray.scoring.hits import scan
from soma_ray.scoring.loads import LoadTally
from soma_ray.scoring.pool import ScoringActor, ScoringPlan, evaluations_from_batch, shards_for
from soma_ray.scoring.shards import (
    GIB,
    ShardError,
    fit_error,
    plan_shards,
    resident_models,
    stage_demand,
    unmet_demand,
    wait_for_nodes,
)
from soma_ray.scoring.store import ModelStore, expected_tensors, max_weights_bytes
from soma_ray.storage import BlobHTTPServer

CONFIG = ModelConfig(dropout_rate=0.0, **SMALL_PRESET)

# -- planning -------------------------------------------------------------------------------


def test_shards_fill_memory_minus_the_reserve_in_sorted_order() -> None:
    sizes = {f"m{i:02d}": 3 * GIB for i in range(7)}
    shards = plan_shards(list(reversed(sizes)), sizes, device_bytes=12 * GIB, reserve_bytes=2 * GIB)
    assert [s.model_ids for s in shards] == [("m00", "m01", "m02"), ("m03", "m04", "m05"), ("m06",)]
    assert [s.columns for s in shards] == [(0, 1, 2), (3, 4, 5), (6,)]
    assert [s.index for s in shards] == [0, 1, 2]
    # Without the reserve a fourth model fits.
    assert len(plan_shards(list(sizes), sizes, device_bytes=12 * GIB, reserve_bytes=0)[0].model_ids) == 4


def test_mixed_sizes_pack_greedily_and_never_make_an_empty_shard() -> None:
    sizes = {"a": 5, "b": 4, "c": 2, "d": 9, "e": 1}
    shards = plan_shards(list(sizes), sizes, device_bytes=11, reserve_bytes=1)
    assert [s.model_ids for s in shards] == [("a", "b"), ("c",), ("d", "e")]
    assert all(s.model_ids for s in shards)
    assert plan_shards([], {}, device_bytes=10, reserve_bytes=0) == []


def test_models_per_actor_overrides_the_estimate() -> None:
    sizes = {f"m{i:02d}": 100 * GIB for i in range(5)}  # would fit nowhere
    shards = plan_shards(list(sizes), sizes, device_bytes=GIB, reserve_bytes=0, models_per_actor=2)
    assert [len(s.model_ids) for s in shards] == [2, 2, 1]
    assert [j for s in shards for j in s.columns] == list(range(5))


def test_a_model_too_big_for_one_actor_is_one_line_naming_the_fix() -> None:
    sizes = {"small": GIB, "huge": 20 * GIB}
    with pytest.raises(ShardError) as err:
        plan_shards(list(sizes), sizes, device_bytes=16 * GIB, reserve_bytes=2 * GIB)
    text = str(err.value)
    assert "\n" not in text and "huge" in text
    assert "scoring.device_memory_gb" in text and "scoring.models_per_actor" in text


def test_shards_for_reads_the_scoring_section() -> None:
    v1 = v1_architecture().shape()
    exact = max_weights_bytes(expected_tensors(ModelConfig(dropout_rate=0.0, **v1)))  # ~4.8 GB
    manifests = {f"m{i:02d}": Manifest("http://x", "c", size=exact) for i in range(12)}
    plan = ScoringPlan(model_config=v1, manifests=manifests)
    by_memory = shards_for(plan, ScoringSection(device_memory_gb=22, activation_reserve_gb=2))
    assert [len(s.model_ids) for s in by_memory] == [4, 4, 4]  # 20 GiB of room, 4.5 GiB a model
    cpu_default = shards_for(plan, ScoringSection())  # 16 GiB − 2 GiB reserve on CPU
    assert [len(s.model_ids) for s in cpu_default] == [3, 3, 3, 3]  # 14 GiB of room
    assert [len(s.model_ids) for s in shards_for(plan, ScoringSection(models_per_actor=5))] == [5, 5, 2]


def test_a_lying_manifest_size_counts_as_the_architectures_bytes() -> None:
    """A stranger's manifest claiming 1 TB must not stop the plan (the store refuses the model)."""
    manifests = {f"m{i:02d}": Manifest("http://x", "c", size=GIB) for i in range(3)}
    manifests["liar"] = Manifest("http://x", "c", size=10**12)
    plan = ScoringPlan(model_config=dict(SMALL_PRESET), manifests=manifests)
    shards = shards_for(plan, ScoringSection(device_memory_gb=1.0, activation_reserve_gb=0.5))
    assert [m for s in shards for m in s.model_ids] == sorted(manifests)
    assert len(shards) == 1  # tiny models: each counts as its exact bytes, not the claim


# -- stages chained in-process ---------------------------------------------------------------


def _weights(seed: int) -> bytes:
    torch.manual_seed(seed)
    model = Model(CONFIG)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.05)
    return bytes(model.save_bytes())


@pytest.fixture(scope="module")
def twelve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Manifest]]]:
    """12 tiny models, encrypted, served over a real local HTTP server."""
    root = tmp_path_factory.mktemp("shards")
    (root / "blobs").mkdir()
    with BlobHTTPServer(root / "blobs") as server:
        manifests: dict[str, Manifest] = {}
        for i in range(12):
            encrypted, key = SomaClient.encrypt_weights(_weights(100 + i), None)
            (root / "blobs" / f"w{i}").write_bytes(encrypted)
            manifests[f"model-{i:02d}"] = Manifest(f"{server.url}/w{i}", commitment(encrypted), len(encrypted), key)
        yield root, manifests


def _batches(count: int, size: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(5)
    out, sid = [], 0
    for _ in range(count):
        data = [bytes(rng.integers(97, 123, int(rng.integers(50, 1500)), dtype=np.uint8)) for _ in range(size)]
        out.append({"sample_id": np.arange(sid, sid + size), "data": np.asarray(data, dtype=object)})
        sid += size
    return out


def _run(stages: list[ScoringActor], batches: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """What the chained `map_batches` stages do, minus Ray: every batch through every stage."""
    out = []
    for batch in batches:
        for stage in stages:
            batch = stage(batch)
        out.append(batch)
    return out


def test_chained_stages_equal_direct_evaluate_and_load_each_model_once(
    twelve: tuple[Path, dict[str, Manifest]],
) -> None:
    root, manifests = twelve
    plan = ScoringPlan(model_config=dict(SMALL_PRESET), manifests=manifests)
    settings = ScoringSection(models_per_actor=3, cache_dir=root / "cache", batch_samples=4)
    shards = shards_for(plan, settings)
    assert [len(s.model_ids) for s in shards] == [3, 3, 3, 3]
    stages = [ScoringActor(plan, settings, shard) for shard in shards]
    results = _run(stages, _batches(4, 4))

    for stage in stages:  # each actor loads each of its models exactly once over 4 batches
        assert stage.store.stats.model_loads == dict.fromkeys(stage.model_ids, 1)
        assert stage.store.stats.evictions == 0
        assert len(stage.store.resident()) == 3
    tally = LoadTally()
    for batch in results:
        tally.update(batch)
    assert (tally.total, tally.max_per_actor) == (12, 1)

    model_ids = sorted(manifests)
    store = ModelStore(root / "direct", CONFIG, max_resident=12)
    for batch in results:
        assert batch["losses"].shape == (4, 12) and batch["embeddings"].shape == (4, 12, CONFIG.embedding_dim)
        evaluations = evaluations_from_batch(batch, model_ids)  # the consumer's view, in plan order
        for model_id in model_ids:
            direct = evaluate(store.get(model_id, manifests[model_id]), list(batch["data"]))
            got = evaluations[model_id]
            np.testing.assert_allclose([e.loss for e in got], [e.loss for e in direct], rtol=1e-6)
            np.testing.assert_allclose(
                np.stack([e.embedding for e in got]), np.stack([e.embedding for e in direct]), rtol=1e-5, atol=1e-6
            )


def _target(model_ids: list[str], embedding: np.ndarray, threshold: float) -> Target:
    return Target(f"t-{'-'.join(model_ids)}", TargetStatus.OPEN, embedding, model_ids, threshold, 1, 0)


def test_bf16_prefilter_per_stage_never_decides_a_target_on_part_of_its_models(
    twelve: tuple[Path, dict[str, Manifest]],
) -> None:
    root, all_manifests = twelve
    manifests = {m: all_manifests[m] for m in sorted(all_manifests)[:4]}
    ids = sorted(manifests)
    batches = _batches(2, 6)
    # Aim each target at a sample's embedding by one model, so something lands near it.
    store = ModelStore(root / "direct-bf16", CONFIG, max_resident=4)
    aim = evaluate(store.get(ids[3], manifests[ids[3]]), list(batches[0]["data"]))[0].embedding
    across = _target([ids[1], ids[3]], aim, 0.05)  # models in both stages
    alone = _target([ids[3]], aim, 0.05)  # the second stage's model only
    plan = ScoringPlan(model_config=dict(SMALL_PRESET), manifests=manifests, targets=[across, alone])
    settings = ScoringSection(models_per_actor=2, cache_dir=root / "cache-bf16", precision="bf16-prefilter",
                              prefilter_margin=0.0)
    stages = [ScoringActor(plan, settings, shard) for shard in shards_for(plan, settings)]
    results = _run(stages, batches)
    aimed: list[float] = []
    for batch in results:
        losses = batch["losses"]
        exact = np.isfinite(losses)
        assert not np.isnan(losses).any(), "every model is available: each pair is float32 or -inf"
        for j, model_id in enumerate(ids):  # whatever is finite is the float32 number
            direct = evaluate(store.get(model_id, manifests[model_id]), list(batch["data"]))
            for i in np.flatnonzero(exact[:, j]):
                assert losses[i, j] == pytest.approx(direct[i].loss, rel=1e-6)
        result = scan(evaluations_from_batch(batch, ids), plan.targets)
        for s in range(losses.shape[0]):  # a target's distance exists only if all its models are exact
            for t, target in enumerate(plan.targets):
                cols = [ids.index(m) for m in target.model_ids]
                if not exact[s, cols].all():
                    assert np.isnan(result.distances[t, s])
        aimed.append(float(result.distances[1, 0]))
    assert aimed[0] <= 0.05, "the later stage found and scored the sample aimed at by its own model"


def test_load_tally_keeps_the_largest_count_per_actor_and_model() -> None:
    tally = LoadTally()
    scorer = np.array([[7, 9], [7, 9]])
    tally.update({"scorer": scorer, "loads": np.array([[1, 1], [1, 1]])})
    tally.update({"scorer": scorer, "loads": np.array([[2, 1], [2, 1]])})  # actor 7 reloaded model 0
    tally.update({"scorer": scorer, "loads": np.array([[1, 1], [1, 1]])})  # a late, repeated batch
    tally.update({"scorer": np.array([[0, 5]]), "loads": np.array([[0, 1]])})  # 0: no stage scored it
    assert (tally.total, tally.max_per_actor) == (4, 2)


# -- do the stages fit the cluster? -----------------------------------------------------------


def test_stage_demand_counts_every_stage_min_actors_and_the_read_task() -> None:
    demand = stage_demand(4, 2, 1.0, 0.5, {"scorer": 1.0}, read_cpus=0.25)
    assert demand == {"CPU": 8.25, "GPU": 4.0, "scorer": 8.0}
    assert stage_demand(3, 1, 0.25, 0.0, {}, read_cpus=0.25) == {"CPU": 1.0}  # no GPU asked, none listed


def test_unmet_demand_names_what_is_short() -> None:
    cluster = {"CPU": 2.0, "GPU": 0.0, "memory": 1e10}
    assert unmet_demand({"CPU": 2.0}, cluster) == {}
    assert unmet_demand({"CPU": 0.1 + 0.2 + 1.7}, cluster) == {}  # float dust is not a shortage
    assert unmet_demand({"CPU": 4.25, "scorer": 4.0}, cluster) == {"CPU": (4.25, 2.0), "scorer": (4.0, 0.0)}


def test_a_pool_that_cannot_fit_is_one_line_naming_the_fixes() -> None:
    text = str(fit_error(4, 1, unmet_demand(stage_demand(4, 1, 1.0, 0, {}, 0.25), {"CPU": 2.0})))
    assert "\n" not in text
    assert "4 stage(s) × 1 actor(s)" in text and "4.25 CPU (the cluster has 2)" in text
    for fix in ("scoring.min_actors", "scoring.num_cpus_per_actor", "scoring.models_per_actor", "scoring.autoscaling"):
        assert fix in text


def test_a_pool_short_now_waits_only_for_nodes_an_autoscaler_can_start() -> None:
    """A fresh cluster/aws.yaml cluster has only its head: 8 CPU, no scorer. Its node types reach 32
    scorers; the pool waits for them, whatever scoring.autoscaling says, and stops at once when it
    needs more than they can ever give."""
    head = {"CPU": 8.0}
    reach = {"CPU": 8.0 + 32 * 8 + 4 * 192, "GPU": 64.0, "scorer": 32.0, "trainer": 32.0}
    demand = stage_demand(4, 2, 1.0, 1.0, {"scorer": 1.0}, 0.25)  # 8 actors
    assert wait_for_nodes(4, 2, demand, {**reach}, None, autoscaling=False) is None  # fits now
    for autoscaling in (False, True):
        line = wait_for_nodes(4, 2, demand, head, reach, autoscaling=autoscaling)
        assert line is not None and "waiting for the autoscaler's nodes" in line and "8 scorer (the cluster has 0)" in line
    with pytest.raises(ShardError, match=r"40 scorer \(the cluster's node types reach 32\).*raise max_workers"):
        wait_for_nodes(20, 2, stage_demand(20, 2, 1.0, 1.0, {"scorer": 1.0}, 0.25), head, reach, autoscaling=True)
    # no autoscaler known (not the head of `ray up`): the recipe's word
    with pytest.raises(ShardError, match="set scoring.autoscaling: true"):
        wait_for_nodes(4, 2, demand, head, None, autoscaling=False)
    line = wait_for_nodes(4, 2, demand, head, None, autoscaling=True)
    assert line is not None and line.startswith("waiting for the autoscaler: ")


def test_resident_models_is_the_whole_shard_unless_capped() -> None:
    shard = plan_shards([f"m{i}" for i in range(5)], {}, device_bytes=0, reserve_bytes=0, models_per_actor=5)[0]
    assert resident_models(None, shard) == 5
    assert resident_models(3, shard) == 3 and resident_models(9, shard) == 5
