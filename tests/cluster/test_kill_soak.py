"""The SIGKILL soak over the cycle (bench/kill_soak.py), small: the wallet's driver actor and the
job process itself are killed mid-cycle, and the network's records and the driver's ledger still
agree on everything (one model, no double submission, commits revealed in commit epoch + 1,
fees and balance to the shannon, nothing left open). The scoring actor and the training worker
are the big run's (`bench/kill_soak.py --runs 8`). Each run starts its own local Ray, so these
run with the session's Ray shut down."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.kit import load_script

BENCH = Path(__file__).resolve().parents[2] / "bench" / "kill_soak.py"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _soak() -> Any:
    return load_script(BENCH)


@pytest.mark.parametrize(("victim", "delay_s"), [("driver", 25.0), ("job", 20.0)])
def test_a_killed_cycle_still_adds_up(no_session_ray: None, tmp_path: Path, victim: str, delay_s: float) -> None:
    soak = _soak()
    report = soak.soak_run(tmp_path, 0, victim, delay_s)
    assert report.killed, f"the {victim} was never found to kill"
    if victim == "job":
        assert report.exit_codes[0] == -9 and report.attempts >= 2  # resubmitted on the kept folder
    assert report.exit_codes[-1] == 0
    assert report.ok, {k: v for k, v in report.invariants.items() if not v} | report.figures
    assert report.figures["chain SubmitData"] >= 1 and report.figures["chain RevealModel"] >= 1

    # The checks can fail: a submission the ledger forgot, or a fee it never paid, is caught.
    folder = tmp_path / "run-0" / "cycle"
    with sqlite3.connect(folder / "driver.db") as db:
        db.execute("UPDATE actions SET fee = fee + 1 WHERE key = (SELECT MIN(key) FROM actions)")
        db.execute("DELETE FROM actions WHERE key = (SELECT MIN(key) FROM actions WHERE kind = 'submit')")
    _, invariants = soak.check(folder)
    assert not invariants["ledger submissions = chain"] and not invariants["ledger fees = chain fees"]
    assert not invariants["balance explained to the shannon"]
