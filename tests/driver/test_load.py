"""The driver actor under 8 concurrent submitter clients (bench/driver_load.py, run small on the
test session's Ray): every hit answered, one submission per target, the SQLite ledger whole and
equal to the chain to the shannon. The full-size run (1,000 hits an epoch) is the benchmark's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.kit import load_script

BENCH = Path(__file__).resolve().parents[2] / "bench" / "driver_load.py"

pytestmark = pytest.mark.timeout(300)


def _bench() -> Any:
    return load_script(BENCH)


def test_eight_clients_hammering_one_driver(ray_session: Any, tmp_path: Path) -> None:
    report = _bench().run_load(tmp_path, clients=8, hits_per_epoch=240, epochs=3, targets_per_epoch=20)
    assert not report.errors, report.errors[:3]
    assert report.hits == 720 and report.submitted + report.answered_none == 720
    # 20 open targets an epoch, 240 hits spread over them: every target filled once, by us.
    assert report.submitted == report.chain_submits == 60 and report.chain_failed_submits == 0
    assert report.claims == 40  # the first two epochs' fills, claimed at fill epoch + 2
    assert report.ledger_integrity == "ok" and report.ledger_open_actions == 0
    assert report.ledger_fees == report.chain_fees and report.unexplained == 0
    assert report.ok, report.checks
    assert report.latency_ms["n"] == 720 and report.latency_ms["p99"] >= report.latency_ms["p50"] > 0
