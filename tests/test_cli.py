"""The `soma-ray` command end to end on the simulated network (real processes, real SQLite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SMALL = [
    "--set", "chain.sim.genesis_targets=5",
    "--set", "chain.sim.params.target_initial_targets_per_epoch=5",
]


def soma_ray(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "soma_ray.cli", *SMALL, *args],
        cwd=cwd, capture_output=True, text=True, timeout=180,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_wallet_faucet_status_targets_and_epochs(tmp_path: Path) -> None:
    created = soma_ray(tmp_path, "wallet", "new")
    assert created.returncode == 0, created.stderr
    address = created.stdout.split("address:")[1].split()[0]
    key = (tmp_path / ".soma-ray" / "wallet.key").read_text().strip()
    assert key not in created.stdout + created.stderr
    assert oct((tmp_path / ".soma-ray" / "wallet.key").stat().st_mode & 0o777) == "0o600"

    funded = soma_ray(tmp_path, "sim", "faucet")
    assert funded.returncode == 0, funded.stderr
    assert f"sent 2.000000000 SOMA to {address}" in funded.stdout

    shown = soma_ray(tmp_path, "wallet", "show")
    assert "balance: 2.000000000 SOMA" in shown.stdout

    status = soma_ray(tmp_path, "status")
    assert status.returncode == 0, status.stderr
    for row in ("epoch", "distance threshold", "open targets", "balance"):
        assert row in status.stdout
    assert "│ open targets          │ 5 " in status.stdout

    advanced = soma_ray(tmp_path, "sim", "advance-epoch", "-n", "2")
    assert advanced.returncode == 0, advanced.stderr
    assert advanced.stdout.startswith("epoch 2:")

    listed = soma_ray(tmp_path, "targets", "list", "--status", "claimable")
    assert "10 claimable target(s)" in listed.stdout  # genesis + epoch 1, both expired now
    assert key not in "".join(p.stdout + p.stderr for p in (funded, shown, status, advanced, listed))


def test_print_secret_prints_once_and_writes_nothing(tmp_path: Path) -> None:
    shown = soma_ray(tmp_path, "wallet", "new", "--print-secret")
    assert shown.returncode == 0
    assert shown.stdout.count("secret:") == 1
    assert not (tmp_path / ".soma-ray" / "wallet.key").exists()


def test_errors_are_one_line_with_status(tmp_path: Path) -> None:
    no_wallet = soma_ray(tmp_path, "wallet", "show")
    assert no_wallet.returncode == 1
    assert no_wallet.stderr.strip().count("\n") == 0
    assert "soma-ray wallet new" in no_wallet.stderr

    bad_chain = soma_ray(tmp_path, "--chain", "mainnet", "status")
    assert bad_chain.returncode == 2
    assert bad_chain.stderr.strip().startswith("error: (defaults): chain.network:")
    assert bad_chain.stderr.strip().count("\n") == 0

    unreachable = soma_ray(tmp_path, "--chain", "http://127.0.0.1:1", "status")
    assert unreachable.returncode == 1
    assert unreachable.stderr.strip().count("\n") == 0
    assert "127.0.0.1:1" in unreachable.stderr


@pytest.mark.parametrize("recipe", ["sim.yaml"])
def test_main_job_funds_a_wallet_and_advances_one_epoch(tmp_path: Path, recipe: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "lifecycle.py"), "--config", str(REPO / "configs" / recipe),
         "--set", "chain.sim.genesis_targets=3"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "│ epoch                 │ 1 " in proc.stdout
    assert "2.000000000 SOMA in 1 coin(s)" in proc.stdout
    assert (tmp_path / ".soma-ray" / "sim" / "sim.db").is_file()


def test_global_options_work_after_the_subcommand_of_every_group(tmp_path: Path) -> None:
    """--config, --chain and --set are the root's, but users write them after the command too."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("kind: run\nchain:\n  network: sim\n  sim:\n    path: net2\n")
    status = soma_ray(tmp_path, "status", "--config", str(recipe))
    assert status.returncode == 0, status.stderr
    assert (tmp_path / "net2" / "sim.db").is_file()  # the recipe's network, not the default one
    assert not (tmp_path / ".soma-ray" / "sim").exists()

    created = soma_ray(tmp_path, "wallet", "new", "--set", "wallet.key_file=k/wallet.key")
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "k" / "wallet.key").is_file()
    funded = soma_ray(tmp_path, "sim", "faucet", "-c", str(recipe), "--set=wallet.key_file=k/wallet.key")
    assert funded.returncode == 0, funded.stderr
    listed = soma_ray(tmp_path, "targets", "list", "--limit", "1", "--config", str(recipe))
    assert "5 open target(s)" in listed.stdout, listed.stderr

    bad_chain = soma_ray(tmp_path, "targets", "list", "--chain", "mainnet")
    assert bad_chain.returncode == 2
    assert bad_chain.stderr.startswith("error: (defaults): chain.network:")
    # the driver group fails on the recipe before it would reach Ray
    missing = soma_ray(tmp_path, "driver", "stop", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert "nope.yaml: file not found" in missing.stderr


def test_every_commands_help_names_the_global_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """They are parsed wherever they are written, so each command's --help says they exist."""
    import typer
    from typer.testing import CliRunner

    from soma_ray.cli import app

    monkeypatch.setenv("COLUMNS", "200")
    root = typer.main.get_command(app)

    def paths(group: typer.core.TyperGroup, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        found = []
        for name, command in group.commands.items():
            found.append((*prefix, name))
            if isinstance(command, typer.core.TyperGroup):
                found += paths(command, (*prefix, name))
        return found

    every = paths(root)  # type: ignore[arg-type]
    assert ("stake", "add") in every and ("status",) in every
    for path in every:
        shown = CliRunner().invoke(app, [*path, "--help"])
        assert shown.exit_code == 0, (path, shown.output)
        assert all(option in shown.output for option in ("--config", "--chain", "--set", "--verbose")), (path, shown.output)


def test_hoisting_moves_only_global_options_and_stops_at_double_dash() -> None:
    from soma_ray.cli import hoist_options

    takes_value = {"--config": True, "-c": True, "--set": True, "--verbose": False}
    assert hoist_options(["wallet", "new", "--force", "-c", "x.yaml", "--set=a=1", "--verbose"], takes_value) == [
        "-c", "x.yaml", "--set=a=1", "--verbose", "wallet", "new", "--force"]
    assert hoist_options(["claim", "--", "--config", "t"], takes_value) == ["claim", "--", "--config", "t"]


def test_a_recipe_without_kind_names_what_is_missing(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("chain:\n  network: sim\n")
    shown = soma_ray(tmp_path, "status", "--config", str(recipe))
    assert shown.returncode == 2
    assert shown.stderr.strip() == f"error: {recipe}: kind: missing; add a top-level `kind: run | submit | train | sweep | cycle` line naming the job"
