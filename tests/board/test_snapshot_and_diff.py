"""Snapshots written and read back equal; diffs and history find what the game did."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from soma_ray.board.diff import diff, history, latest_targets
from soma_ray.board.snapshot import SnapshotError, SnapshotStore
from tests.board.conftest import ADDED_STAKE, EPOCHS, TARGETS_PER_EPOCH, Game


def test_snapshots_round_trip_through_parquet(game: Game) -> None:
    assert game.store.epochs() == list(range(EPOCHS))
    assert game.store.read_all() == game.snapshots
    again = SnapshotStore(game.store.root)  # a fresh reader sees the same
    assert again.read(2) == game.snapshots[2]
    assert again.read(2) != game.snapshots[3]


def test_snapshot_holds_the_board(game: Game) -> None:
    assert game.ours in {m.model_id for m in game.snapshots[4].models}
    ours = game.snapshots[4].model(game.ours)
    assert ours is not None and ours.owner == game.us and ours.state == "active"
    assert np.array_equal(ours.vector, game.moved_embedding)
    s3 = game.snapshots[3]
    # epoch 3's start: its ten epoch-start targets and every target of epoch 2, as the chain ended it
    assert sum(t.generation_epoch == 3 for t in s3.targets) == TARGETS_PER_EPOCH
    assert {t.target_id for t in s3.targets if t.generation_epoch == 2} == {t.id for t in game.epoch_targets[2]}
    fill = next(f for f in game.fills if f.epoch == 2 and f.model_id == game.ours)
    row = next(t for t in s3.targets if t.target_id == fill.target_id)
    assert (row.winning_model_id, row.winning_model_owner, row.submitter) == (game.ours, game.us, game.us)
    assert row.embedding == ()  # only open targets keep theirs
    for target in s3.open_targets():
        assert len(target.embedding) == s3.params.target_embedding_dim


def test_rewriting_an_epoch_replaces_it_whole(game: Game, tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s")
    store.write(game.snapshots[1])
    store.write(game.snapshots[1])
    assert store.read(1) == game.snapshots[1]
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["epoch-000001"]  # no staging folder left


def test_a_missing_snapshot_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="no snapshot of epoch 7 .* take one first"):
        SnapshotStore(tmp_path).read(7)


def test_diff_finds_the_stake_change_the_entrant_and_the_fills(game: Game) -> None:
    s = game.snapshots
    first = diff(s[0], s[1])
    stake = {c.model_id: c for c in first.stake_changes}
    assert list(stake) == [game.staked_model]
    assert stake[game.staked_model].after - stake[game.staked_model].before == ADDED_STAKE
    assert set(first.filled) == {f.target_id for f in game.fills if f.epoch == 0}
    assert first.entrants == () and first.exits == ()

    second = diff(s[1], s[2])
    assert second.entrants == (game.ours,)
    assert set(second.filled) == {f.target_id for f in game.fills if f.epoch == 1}
    assert second.stake_changes == ()

    third = diff(s[2], s[3])
    assert set(third.claimed) == {f.target_id for f in game.fills if f.epoch == 0}
    assert third.moved == ()

    fourth = diff(s[3], s[4])
    assert [m.model_id for m in fourth.moved] == [game.ours]
    a, b = game.first_embedding.astype(np.float64), game.moved_embedding.astype(np.float64)
    assert fourth.moved[0].distance == pytest.approx(1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=1e-5)
    assert fourth.threshold == (s[3].info.distance_threshold, s[4].info.distance_threshold)
    assert set(fourth.new_targets) >= {t.target_id for t in s[4].targets if t.generation_epoch == 4}


def test_history_counts_the_fills_per_epoch(game: Game) -> None:
    points = history(game.snapshots)
    assert [p.epoch for p in points] == list(range(EPOCHS))
    assert [p.fills for p in points] == [sum(f.epoch == e for f in game.fills) for e in range(EPOCHS)]
    assert [p.distance_threshold for p in points] == [s.info.distance_threshold for s in game.snapshots]
    assert points[1].hits_ema == game.snapshots[1].info.hits_ema > 0  # epoch 0 had hits
    seen = latest_targets(game.snapshots)
    assert all(seen[f.target_id].winning_model_id == f.model_id for f in game.fills)


def test_diff_finds_commission_changes_and_exits(game: Game) -> None:
    """The chain API has no commission transaction yet: a changed copy of a real snapshot stands in."""
    before = game.snapshots[4]
    first, second, *rest = before.models
    after = replace(before, models=(replace(first, commission_rate=first.commission_rate + 250), *rest))
    found = diff(before, after)
    assert [(c.model_id, c.before, c.after) for c in found.commission_changes] == [
        (first.model_id, first.commission_rate, first.commission_rate + 250)
    ]
    assert found.exits == (second.model_id,) and found.entrants == ()
    assert found.stake_changes == () and found.moved == ()
