"""Winner analytics against what the chain reported and paid."""

from __future__ import annotations

from collections import Counter

from soma_ray.board.winners import winner_stats, wins
from soma_ray.protocol.rewards import split_filled
from tests.board.conftest import Game


def test_wins_are_the_chains_fills(game: Game) -> None:
    found = wins(game.snapshots)
    assert [(w.target_id, w.model_id, w.submitter, w.reward_pool, w.fill_epoch) for w in found] == sorted(
        ((f.target_id, f.model_id, f.submitter, f.reward_pool, f.epoch) for f in game.fills),
        key=lambda x: (x[4], x[0]),
    )
    assert {w.target_id for w in found if w.claimed} == set(game.claimed)
    assert len(game.claimed) == 5 and len(found) == 6


def test_winner_stats_equal_the_chains_numbers(game: Game) -> None:
    snapshot = game.snapshots[-1]
    stats = winner_stats(wins(game.snapshots), snapshot.params)
    assert stats.fills == len(game.fills)
    assert stats.wins_per_model == dict(Counter(f.model_id for f in game.fills))
    owners = Counter(game.us if f.model_id == game.ours else game.genesis_owner for f in game.fills)
    assert stats.wins_per_owner == dict(owners)
    assert stats.fills_per_submitter == {game.us: 4, game.rival: 2}
    assert stats.top_submitter_share == 4 / 6
    assert abs(stats.submitter_hhi - ((4 / 6) ** 2 + (2 / 6) ** 2)) < 1e-12

    paid = stats.payouts
    # the genesis owner never sends a transaction: its balance is exactly the model-owner shares paid to it
    assert paid.to_model_owners[game.genesis_owner] == game.genesis_owner_balance > 0
    claimed = [f for f in game.fills if f.target_id in game.claimed]
    assert paid.total == sum(f.reward_pool for f in claimed)
    assert paid.to_claimers == sum(split_filled(f.reward_pool, snapshot.params).claimer for f in claimed)
    assert paid.unclaimed == sum(f.reward_pool for f in game.fills if f.target_id not in game.claimed)
