"""The landscape against brute force (float64, written out here)."""

from __future__ import annotations

import numpy as np
import pytest

from soma_ray.board.landscape import clusters, landscape, pairwise_distances
from tests.board.conftest import Game


def brute_distance(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_nearest_neighbours_and_density_equal_brute_force(game: Game) -> None:
    snapshot = game.snapshots[4]
    models = snapshot.models
    assert len(models) == 7
    for radius in (0.3, 1.0):
        found = landscape(snapshot, radius).neighbourhoods
        assert [n.model_id for n in found] == [m.model_id for m in models]
        for n, model in zip(found, models):
            others = [(brute_distance(model.vector, o.vector), o.model_id) for o in models if o is not model]
            distance, nearest = min(others)
            assert n.nearest == nearest
            assert n.distance == pytest.approx(distance, abs=1e-5)
            assert n.density == sum(d < radius for d, _ in others)
    assert any(n.density for n in landscape(snapshot, 1.0).neighbourhoods)  # the check saw some neighbours


def test_pairwise_distances_are_symmetric_cosine_distances(game: Game) -> None:
    models = game.snapshots[4].models
    matrix = pairwise_distances(models)
    for i, a in enumerate(models):
        for j, b in enumerate(models):
            assert matrix[i, j] == pytest.approx(brute_distance(a.vector, b.vector), abs=1e-5)


def test_clusters_are_the_connected_groups_of_neighbours(game: Game) -> None:
    models = game.snapshots[4].models
    # a radius just past the closest pair: that pair joins, and at least one model stays alone
    pairs = sorted(brute_distance(a.vector, b.vector) for a in models for b in models if a is not b)
    radius = pairs[0] + 1e-4
    groups = clusters(models, radius)
    assert sorted(i for g in groups for i in g) == sorted(m.model_id for m in models)  # a partition
    assert len(groups[0]) > 1 and len(groups) > 1  # not trivial at this radius
    group_of = {i: n for n, g in enumerate(groups) for i in g}
    for a in models:
        for b in models:
            if brute_distance(a.vector, b.vector) < radius:
                assert group_of[a.model_id] == group_of[b.model_id]
    # and no group could be split: each member has a neighbour inside its group (groups > 1)
    for g in groups:
        if len(g) > 1:
            vectors = {m.model_id: m.vector for m in models}
            for i in g:
                assert any(brute_distance(vectors[i], vectors[j]) < radius for j in g if j != i)


def test_open_targets_list_their_models_with_stake_commission_and_distance(game: Game) -> None:
    snapshot = game.snapshots[4]
    by_id = {m.model_id: m for m in snapshot.models}
    found = landscape(snapshot).targets
    assert [t.target_id for t in found] == [t.target_id for t in snapshot.open_targets()]
    assert len(found) == 10
    for seen, target in zip(found, snapshot.open_targets()):
        assert [m.model_id for m in seen.models] == list(target.model_ids)
        assert seen.reward_pool == target.reward_pool
        for m in seen.models:
            model = by_id[m.model_id]
            assert (m.stake, m.commission_rate) == (model.stake, model.commission_rate)
            assert m.distance == pytest.approx(brute_distance(target.vector, model.vector), abs=1e-5)
