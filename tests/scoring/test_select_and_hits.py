"""`select` (first argmin, f32 cosine distance) and the array hit finder against plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from soma_ray.chain.types import Target
from soma_ray.scoring.evaluate import Evaluation
from soma_ray.scoring.hits import find_hits, scan
from soma_ray.scoring.select import cosine_distance, select


def ev(loss: float, embedding: list[float] | np.ndarray) -> Evaluation:
    return Evaluation(loss, np.asarray(embedding, dtype=np.float32))


def target(tid: str, embedding: np.ndarray, models: list[str], threshold: float) -> Target:
    return Target(
        id=tid, status="open", embedding=embedding.astype(np.float32), model_ids=models,
        distance_threshold=threshold, reward_pool=1, generation_epoch=0,
    )


def test_cosine_distance_is_f32_and_nan_for_zero() -> None:
    assert cosine_distance(np.array([1, 0]), np.array([0, 1])) == 1.0
    assert cosine_distance(np.array([1, 1]), np.array([2, 2])) == pytest.approx(0.0, abs=1e-7)
    assert cosine_distance(np.array([1, 0]), np.array([-1, 0])) == 2.0
    assert math.isnan(cosine_distance(np.zeros(2), np.array([1, 0])))
    a, b = np.random.default_rng(0).normal(size=(2, 64))
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    expected = np.float32(1) - np.dot(a32 / np.linalg.norm(a32), b32 / np.linalg.norm(b32))
    assert cosine_distance(a, b) == float(expected)


def test_select_takes_the_first_minimum_and_skips_failures() -> None:
    goal = np.array([1.0, 0.0])
    evals = [ev(2.0, [0, 1]), ev(1.0, [1, 0]), ev(1.0, [0, 1])]
    assert select(evals, goal)[0] == 1  # tie: the first wins
    winner, loss, embedding, distance = select(evals, goal)
    assert (loss, distance) == (1.0, 0.0) and embedding.tolist() == [1.0, 0.0]
    failed = Evaluation(math.nan, np.full(2, np.nan, np.float32), "empty data")
    assert select([failed, ev(3.0, [1, 1])], goal)[0] == 1
    with pytest.raises(ValueError, match="no model"):
        select([failed], goal)


def test_hit_finder_equals_select_for_every_pair() -> None:
    rng = np.random.default_rng(3)
    models = [f"0x{m:064x}" for m in range(6)]
    samples, dim = 40, 8
    evaluations = {
        m: [ev(float(rng.uniform(1, 5)), rng.normal(size=dim)) for _ in range(samples)] for m in models
    }
    # a repeated loss so the first-minimum rule matters
    evaluations[models[2]][5] = ev(evaluations[models[1]][5].loss, rng.normal(size=dim))
    targets = [
        target(f"t{i}", rng.normal(size=dim), list(rng.choice(models, size=3, replace=False)), 0.7)
        for i in range(25)
    ]
    result = scan(evaluations, targets)
    for t_index, t in enumerate(targets):
        for s in range(samples):
            winner, loss, embedding, distance = select([evaluations[m][s] for m in t.model_ids], t.embedding)
            assert result.model_ids[result.winners[t_index, s]] == t.model_ids[winner]
            assert result.distances[t_index, s] == pytest.approx(distance, abs=2e-6)
    hits = find_hits(evaluations, targets)
    assert hits, "the threshold is loose enough for some pairs"
    for hit in hits:
        t_index = next(i for i, t in enumerate(targets) if t.id == hit.target_id)
        row = result.distances[t_index]
        assert hit.distance <= targets[t_index].distance_threshold
        assert hit.distance == pytest.approx(float(np.nanmin(row)), abs=2e-6)  # best candidate
        assert hit.model_id in targets[t_index].model_ids
    assert len({h.target_id for h in hits}) == len(hits)  # one per target
    missing = {t.id for t_index, t in enumerate(targets) if (result.distances[t_index] <= 0.7).any()}
    assert {h.target_id for h in hits} == missing


def test_missing_models_never_win_and_failed_samples_never_hit() -> None:
    goal = np.array([1.0, 0.0, 0.0])
    evaluations = {
        "0xa": [ev(1.0, [1, 0, 0]), Evaluation(math.nan, np.full(3, np.nan, np.float32), "empty")],
    }
    targets = [target("t", goal, ["0xb", "0xa"], 0.5), target("u", goal, ["0xb"], 2.0)]
    result = scan(evaluations, targets)
    assert result.winners[0, 0] == 0 and result.distances[0, 0] == pytest.approx(0.0, abs=1e-7)
    assert result.winners[0, 1] == -1 and math.isnan(result.distances[0, 1])
    assert result.winners[1].tolist() == [-1, -1]
    hits = find_hits(evaluations, targets)
    assert [(h.target_id, h.sample_index, h.model_id) for h in hits] == [("t", 0, "0xa")]
