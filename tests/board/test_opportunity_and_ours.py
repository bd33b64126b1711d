"""Opportunity (simulator × history) and our per-epoch results, against the chain's targets."""

from __future__ import annotations

import numpy as np
import pytest

from soma_ray.board.opportunity import guide_ratio, opportunity, win_rate
from soma_ray.board.ours import our_epochs
from soma_ray.board.simulate import Candidate, Simulator
from soma_ray.protocol.constants import SHANNONS_PER_SOMA
from soma_ray.protocol.rewards import split_filled
from tests.board.conftest import EPOCHS, Game


def test_win_rate_from_history_is_the_chains(game: Game) -> None:
    # finished epochs 0..3, each as the chain ended it
    listing = [t for e in range(EPOCHS - 1) for t in game.epoch_targets[e] if game.ours in t.model_ids]
    mine = win_rate(game.snapshots, game.ours)
    ours_won = sum(f.model_id == game.ours for f in game.fills)
    assert ours_won >= 1  # the game fills one target with our model
    assert (mine.source, mine.assigned, mine.wins) == ("model", len(listing), ours_won)
    network = win_rate(game.snapshots)
    everything = [t for e in range(EPOCHS - 1) for t in game.epoch_targets[e]]
    assert network.source == "network"
    assert network.wins == len(game.fills) == sum(t.winning_model_id is not None for t in everything)
    assert network.assigned == sum(len(t.model_ids) for t in everything)
    assert win_rate(game.snapshots, "0xunknown") == network  # no record of its own: the network's


def test_opportunity_is_assignments_times_p_win_times_reward_less_costs(game: Game) -> None:
    snapshot = game.snapshots[-1]
    sim = Simulator(snapshot, draws=200, seed=4)
    ours = snapshot.model(game.ours)
    assert ours is not None
    me = Candidate(ours.vector, ours.stake, game.ours)
    costs = SHANNONS_PER_SOMA // 1000
    found = opportunity(sim, me, game.snapshots, costs_per_epoch=costs)
    assert found.assignments == sim.run(me)
    assert found.p_win == win_rate(game.snapshots, game.ours)
    assert found.reward_per_target == snapshot.info.reward_per_target
    expected = found.assignments.expected_per_epoch * found.p_win.rate * snapshot.info.reward_per_target - costs
    assert found.expected_reward == pytest.approx(expected)
    assert found.guide_ratio == guide_ratio(snapshot, me)


def test_guide_ratio_by_hand(game: Game) -> None:
    snapshot = game.snapshots[-1]
    model, target = snapshot.models[0].vector, snapshot.open_targets()[0].vector
    point = model / np.linalg.norm(model) + target / np.linalg.norm(target)  # on both their sides
    me = Candidate(point, 2 * SHANNONS_PER_SOMA)

    def near(v: np.ndarray) -> bool:
        return float(1 - point @ v / (np.linalg.norm(point) * np.linalg.norm(v))) <= 1.0

    rewards = sum(t.reward_pool for t in snapshot.open_targets() if near(t.vector))
    models = [m for m in snapshot.models if near(m.vector)]
    stake = me.stake + sum(m.stake for m in models)
    assert rewards and models  # the check is not empty
    assert guide_ratio(snapshot, me) == pytest.approx(
        (rewards / SHANNONS_PER_SOMA) / (len(models) + 1 + stake / SHANNONS_PER_SOMA)
    )


def test_our_epochs_against_the_chain(game: Game) -> None:
    costs = {e: SHANNONS_PER_SOMA // 100 for e in range(EPOCHS)}
    results = our_epochs(game.snapshots, models={game.ours}, addresses={game.us}, costs=costs)
    assert [r.epoch for r in results] == list(range(EPOCHS))
    params = game.snapshots[-1].params
    for r in results[:-1]:  # epoch 4 is not over: the chain's epoch_targets stop at 3
        chain_targets = game.epoch_targets[r.epoch]
        assert r.assigned == sum(game.ours in t.model_ids for t in chain_targets)
        assert r.wins == sum(t.winning_model_id == game.ours for t in chain_targets)
        income = 0
        for f in game.fills:
            if f.epoch == r.epoch:
                split = split_filled(f.reward_pool, params)
                income += split.submitter * (f.submitter == game.us) + split.model_owner * (f.model_id == game.ours)
        assert r.income == income
        assert r.pnl == income - costs[r.epoch]
    assert results[2].wins >= 1 and results[2].win_rate == results[2].wins / results[2].assigned
    assert results[0].assigned == 0 and results[0].win_rate == 0.0
