"""The assignment simulator: exact against the chain's own assignment, monotone in stake."""

from __future__ import annotations

import numpy as np
import pytest

from soma_ray.board.simulate import Candidate, Simulator, assign, draw_seeds, draw_targets, registry
from soma_ray.protocol.constants import SHANNONS_PER_SOMA
from soma_ray.protocol.targets import epoch_start_seed, target_embedding
from tests.board.conftest import DIM, EPOCHS, TARGETS_PER_EPOCH, Game


def test_same_seeds_reproduce_the_chains_assignment_exactly(game: Game) -> None:
    """Each snapshot was taken at its epoch's start, so its models are those the epoch-start
    targets were drawn against; their seeds come from their ids (§3.2)."""
    checked = spawned = 0
    for snapshot in game.snapshots[1:]:
        k = snapshot.params.target_models_per_target
        reg = registry(snapshot.models)
        mine = [t for t in snapshot.targets if t.generation_epoch == snapshot.epoch]
        seeds = [epoch_start_seed(t.target_id) for t in mine]
        drawn = draw_targets(seeds, DIM)
        at_start = [i for i, t in enumerate(mine) if np.array_equal(drawn[i], t.vector)]
        assert len(at_start) == TARGETS_PER_EPOCH  # every epoch-start target, found by its seed
        assigned = assign(reg, drawn[at_start], k)
        assert assigned == [list(mine[i].model_ids) for i in at_start]
        checked += len(at_start)
    # the spawned targets of earlier epochs are not reproduced from their ids (another creation number)
    for t in (t for e in range(1, EPOCHS - 1) for t in game.epoch_targets[e]):
        spawned += not np.array_equal(target_embedding(epoch_start_seed(t.id), DIM), t.embedding)
    assert checked == (EPOCHS - 1) * TARGETS_PER_EPOCH
    assert spawned > 0


def test_a_changed_registry_changes_the_assignment(game: Game) -> None:
    """The reproduction is sensitive: with our model's stake multiplied, the same seeds give a
    different assignment."""
    snapshot = game.snapshots[3]
    mine = [t for t in snapshot.targets if t.generation_epoch == snapshot.epoch]
    drawn = draw_targets([epoch_start_seed(t.target_id) for t in mine], DIM)
    ours = snapshot.model(game.ours)
    assert ours is not None
    richer = registry(snapshot.models, [Candidate(ours.vector, ours.stake * 1000, game.ours)])
    assert assign(richer, drawn, 3) != [list(t.model_ids) for t in mine]


def test_more_stake_never_gives_fewer_assignments(game: Game) -> None:
    snapshot = game.snapshots[-1]
    sim = Simulator(snapshot, draws=300, seed=1)
    ours = snapshot.model(game.ours)
    assert ours is not None
    stakes = [ours.stake * m // 4 for m in (1, 2, 4, 8, 16, 64)]
    curve = sim.stake_curve(Candidate(ours.vector, ours.stake, game.ours), stakes)
    hits = [a.hits for a in curve]
    assert hits == sorted(hits) and hits[-1] > hits[0]
    at_stake = sim.run(Candidate(ours.vector, ours.stake, game.ours))
    assert at_stake.hits == curve[2].hits  # a what-if of the current stake is the plain run
    assert at_stake.expected_per_epoch == pytest.approx(at_stake.share * sim.per_epoch)


def test_a_rival_at_our_point_takes_assignments(game: Game) -> None:
    snapshot = game.snapshots[-1]
    sim = Simulator(snapshot, draws=300, seed=2)
    ours = snapshot.model(game.ours)
    assert ours is not None
    me = Candidate(ours.vector, ours.stake, game.ours)
    alone = sim.run(me)
    rival = sim.with_rival(me, Candidate(ours.vector * 1.01, ours.stake * 4, "rival"))
    assert rival.hits < alone.hits
    with pytest.raises(ValueError, match="rival needs its own id"):
        sim.with_rival(me, Candidate(ours.vector, 1, game.ours))


def test_a_new_candidate_joins_the_registry(game: Game) -> None:
    snapshot = game.snapshots[-1]
    sim = Simulator(snapshot, draws=200, seed=3)
    newcomer = sim.run(Candidate(np.ones(DIM, np.float32), 100 * SHANNONS_PER_SOMA))
    assert newcomer.model_id == "candidate" and newcomer.draws == 200
    assert newcomer.share > 0.5  # 100 SOMA against a field of a few: listed on most targets
    with pytest.raises(ValueError, match="different sizes"):
        sim.run(Candidate(np.ones(DIM + 1, np.float32), SHANNONS_PER_SOMA))


def test_draws_are_reproducible_u64_seeds() -> None:
    assert draw_seeds(5, 9) == draw_seeds(5, 9) != draw_seeds(5, 10)
    assert all(0 <= s < 2**64 for s in draw_seeds(100, 0))
