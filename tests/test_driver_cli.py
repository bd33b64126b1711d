"""`soma-ray driver status|stop`, `soma-ray claim`, `soma-ray reveal` and `jobs/driver.py` as real
processes that join the session's Ray cluster (RAY_ADDRESS) and talk to one detached driver actor."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SMALL = [
    "--set", "chain.sim.genesis_targets=5",
    "--set", "chain.sim.params.target_initial_targets_per_epoch=5",
]


def run(cwd: Path, args: list[str], ray_address: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    if ray_address is not None:
        env["RAY_ADDRESS"] = ray_address
    return subprocess.run(args, check=False, cwd=cwd, capture_output=True, text=True, timeout=180, env=env)


def soma_ray(cwd: Path, *args: str, ray_address: str | None = None) -> subprocess.CompletedProcess[str]:
    return run(cwd, [sys.executable, "-m", "soma_ray.cli", *SMALL, *args], ray_address)


@pytest.fixture
def wallet(tmp_path: Path) -> str:
    """A funded wallet on a small simulated network in tmp_path; returns its address."""
    created = soma_ray(tmp_path, "wallet", "new")
    assert created.returncode == 0, created.stderr
    assert soma_ray(tmp_path, "sim", "faucet").returncode == 0
    return created.stdout.split("address:")[1].split()[0]


@pytest.mark.slow
def test_status_claim_reveal_and_stop_talk_to_one_driver(tmp_path: Path, wallet: str, ray_session: Any) -> None:
    from soma_ray.driver.actor import NAMESPACE

    address = ray_session.get_runtime_context().gcs_address
    status = soma_ray(tmp_path, "driver", "status", ray_address=address)
    assert status.returncode == 0, status.stderr
    for text in (wallet, "network / epoch", "sim / 0", "2.000000000 SOMA", "pending actions", "none yet"):
        assert text in status.stdout, status.stdout
    ray_session.get_actor(f"driver-{wallet}", namespace=NAMESPACE)  # detached: outlives the command

    claimed = soma_ray(tmp_path, "claim", ray_address=address)
    assert claimed.returncode == 0, claimed.stderr
    assert claimed.stdout.strip() == "claimed 0 target(s)"
    unknown = soma_ray(tmp_path, "claim", "0x" + "ab" * 32, ray_address=address)
    assert unknown.stdout.strip() == "claimed 0 target(s)", unknown.stderr
    revealed = soma_ray(tmp_path, "reveal", ray_address=address)
    assert revealed.stdout.strip() == "revealed 0 model(s)", revealed.stderr

    watched = run(tmp_path, [sys.executable, str(REPO / "jobs" / "driver.py"), "--once", *SMALL], address)
    assert watched.returncode == 0, watched.stderr
    assert wallet in watched.stdout and "submissions / claims" in watched.stdout

    stopped = soma_ray(tmp_path, "driver", "stop", ray_address=address)
    assert stopped.stdout.strip() == f"stopped the driver of {wallet}", stopped.stderr
    deadline = time.monotonic() + 30
    while True:
        try:
            ray_session.get_actor(f"driver-{wallet}", namespace=NAMESPACE)
        except ValueError:
            break
        assert time.monotonic() < deadline, "the driver actor survived `driver stop`"
        time.sleep(0.5)
    again = soma_ray(tmp_path, "driver", "stop", ray_address=address)
    assert again.stdout.strip() == f"no driver running for {wallet}", again.stderr


@pytest.mark.parametrize("entry", ["cli", "job"])
def test_a_bad_config_is_one_line(tmp_path: Path, entry: str) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("kind: submit\ndata:\n  source: files\n  path: .\ndriver:\n  concurrent_submissions: 0\n")
    if entry == "cli":
        proc = soma_ray(tmp_path, "--config", str(recipe), "driver", "status")
    else:
        proc = run(tmp_path, [sys.executable, str(REPO / "jobs" / "driver.py"), "--once", "--config", str(recipe)])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {recipe}: driver.concurrent_submissions: ")


def test_no_wallet_is_one_line(tmp_path: Path) -> None:
    proc = soma_ray(tmp_path, "driver", "status")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no wallet" in lines[0] and "soma-ray wallet new" in lines[0], proc.stderr
