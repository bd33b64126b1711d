"""bench/scoring.py, the board-size scoring benchmark, small: one board of 4 models, every design, on a local
Ray of its own (so it runs with the session's Ray shut down). The sharded pool loads each model once
per actor whatever the board's size, the single-stage pool with one resident model reloads them, and
every design's losses equal the official-style path's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "scoring.py"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_scoring_bench_compares_designs_across_board_sizes(no_session_ray: None, tmp_path: Path) -> None:
    out = tmp_path / "board.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--models", "4", "--width", "32", "--layers", "1", "--heads", "2",
         "--samples", "8", "--sample-bytes", "300", "--batch-samples", "2", "--official-samples", "2",
         "--models-per-actor", "2", "--resident", "1", "--workdir", str(tmp_path), "--json", str(out)],
        capture_output=True, text=True, timeout=540, check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    doc = json.loads(out.read_text())
    boards = {b["models"]: b for b in doc["boards"]}
    assert set(boards) == {4}
    for n, board in boards.items():
        results = board["results"]
        assert set(results) == {"official", "sharded", "single-stage"}
        assert all(a["ok"] and a["pairs"] > 0 for a in board["agreements"].values())
        sharded, single = results["sharded"], results["single-stage"]
        assert sharded["layout"]["stages"] == n // 2 and single["layout"]["stages"] == 1
        assert sharded["loads_max_per_actor_model"] == 1  # resident: each model once per actor
        assert n <= sharded["loads_total"] <= n * sharded["layout"]["actors_per_stage"]
        assert single["loads_max_per_actor_model"] > 1  # one resident model of n: reloads every batch
        assert sharded["samples"] == single["samples"] == 8 and sharded["pairs_per_s"] > 0
        assert all(rss > 0 for rss in sharded["actor_peak_rss_mib"])
    assert any("target ≤ 1" in line for line in doc["summary"])
    assert "sharded / single-stage" in done.stdout and "results agree: yes" in done.stdout
