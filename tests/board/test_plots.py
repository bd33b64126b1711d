"""The pictures decode as real, non-blank PNGs (looked at by eye too when they were made)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.image import imread

from soma_ray.board.ours import our_epochs
from soma_ray.board.plots import map_png, pnl_png, share_png, win_rate_png
from soma_ray.board.simulate import Candidate, Simulator
from soma_ray.protocol.constants import SHANNONS_PER_SOMA
from tests.board.conftest import EPOCHS, Game


def assert_picture(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(path)
    height, width = pixels.shape[:2]
    assert height > 200 and width > 300
    flat = pixels.reshape(-1, pixels.shape[-1])
    assert len(np.unique(flat, axis=0)) > 20  # drawn on, not one colour


def test_all_four_pictures(game: Game, tmp_path: Path) -> None:
    snapshot = game.snapshots[-1]
    ours = snapshot.model(game.ours)
    assert ours is not None
    results = our_epochs(game.snapshots, models={game.ours}, addresses={game.us},
                         costs={e: SHANNONS_PER_SOMA // 50 for e in range(EPOCHS)})
    curve = Simulator(snapshot, draws=200).stake_curve(
        Candidate(ours.vector, ours.stake, game.ours), [ours.stake * m // 4 for m in (1, 2, 4, 8, 16, 32)]
    )
    pictures = [
        map_png(snapshot, tmp_path / "map.png", ours={game.ours}),
        share_png(curve, tmp_path / "share.png", current_stake=ours.stake),
        pnl_png(results, tmp_path / "pnl.png"),
        win_rate_png(results, tmp_path / "win_rate.png"),
    ]
    for path in pictures:
        assert_picture(path)


def test_pictures_of_an_empty_board(game: Game, tmp_path: Path) -> None:
    """No models, no results: still a picture (with axes), not a crash."""
    from dataclasses import replace

    empty = replace(game.snapshots[0], models=(), targets=())
    for path in (map_png(empty, tmp_path / "m.png"), pnl_png([], tmp_path / "p.png"),
                 win_rate_png([], tmp_path / "w.png"), share_png([], tmp_path / "s.png")):
        assert imread(path).shape[0] > 100
