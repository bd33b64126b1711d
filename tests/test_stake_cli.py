"""`soma-ray stake add|withdraw|list`, `soma-ray model commission`, `soma-ray models list|show`.

Parsing and the read-only commands run here as real processes on the simulated network, without
Ray; bad input is refused in one line before anything starts. The commands that sign talk to the
wallet's driver actor: those tests join the session's Ray cluster (marked slow)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from soma_sdk import Keypair

from soma_ray.chain.sim import SimChain, SimSettings
from soma_ray.stakes import StakeInputError, parse_amount, parse_id, parse_rate

SMALL = [
    "--set", "chain.sim.genesis_targets=5",
    "--set", "chain.sim.params.target_initial_targets_per_epoch=5",
]
SOMA = 1_000_000_000
MODEL = "0x" + "ab" * 32


def soma_ray(cwd: Path, *args: str, ray_address: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}
    if ray_address is not None:
        env["RAY_ADDRESS"] = ray_address
    return subprocess.run(
        [sys.executable, "-m", "soma_ray.cli", *SMALL, *args], cwd=cwd, capture_output=True, text=True,
        timeout=180, env=env,
    )


# -- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "shannons"), [
    ("1", SOMA), ("1.5", 3 * SOMA // 2), ("0.000000001", 1), (".25SOMA", SOMA // 4), ("2 soma", 2 * SOMA),
    ("1500shannons", 1500), ("1 shannon", 1), ("0.1", SOMA // 10),
])
def test_amounts_are_exact_soma_or_shannons(text: str, shannons: int) -> None:
    assert parse_amount(text) == shannons


@pytest.mark.parametrize(("text", "why"), [
    ("abc", "not a number"), ("-1", "not a number"), ("1e9", "not a number"), ("0", "more than zero"),
    ("0.0000000001", "at most 9 decimals"), ("1.5shannons", "shannons are whole"), ("1 SOMA extra", "not a number"),
])
def test_bad_amounts_name_the_problem(text: str, why: str) -> None:
    with pytest.raises(StakeInputError, match=why):
        parse_amount(text)


def test_rates_are_basis_points_within_the_protocol_bounds() -> None:
    assert [parse_rate(t) for t in ("0", "250", "10000")] == [0, 250, 10_000]
    for text, why in (("10001", "above 10000"), ("-5", "negative"), ("2.5%", "whole number of basis points")):
        with pytest.raises(StakeInputError, match=why):
            parse_rate(text)


def test_ids_are_canonical() -> None:
    assert parse_id("AB") == "0x" + "0" * 62 + "ab"
    with pytest.raises(StakeInputError, match="not an id"):
        parse_id("0xnope")


# -- commands without Ray -------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("stake", "add", MODEL, "lots"),
    ("stake", "add", "0xnope", "1"),
    ("stake", "withdraw", MODEL, "--object", "zz"),
    ("model", "commission", "10001"),
    ("model", "commission", "2.5%"),
    ("model", "commission", "100", "--model", "not-an-id"),
])
def test_bad_input_is_one_line_and_exit_2_before_anything_starts(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = soma_ray(tmp_path, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not (tmp_path / ".soma-ray").exists()  # nothing was created: no network, no wallet, no Ray


def test_models_list_show_and_our_stakes_read_the_chain(tmp_path: Path) -> None:
    assert soma_ray(tmp_path, "wallet", "new").returncode == 0
    assert soma_ray(tmp_path, "sim", "faucet").returncode == 0
    secret = (tmp_path / ".soma-ray" / "wallet.key").read_text().strip()
    me = Keypair.from_secret_key(secret)
    sim = SimChain(SimSettings(path=tmp_path / ".soma-ray" / "sim"))  # the file the CLI made
    models = asyncio.run(sim.active_models())
    assert models
    biggest = max(models, key=lambda m: m.stake)
    asyncio.run(sim.add_stake_to_model(me, biggest.model_id, SOMA // 2))

    listed = soma_ray(tmp_path, "models", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"{len(models)} active model(s) (* ours)" in listed.stdout
    for m in models:
        assert m.model_id in listed.stdout
    assert "*" not in listed.stdout.split("(* ours)")[1]  # none of them is ours

    shown = soma_ray(tmp_path, "models", "show", biggest.model_id)
    assert shown.returncode == 0, shown.stderr
    for text in ("status", "active", "commission", "our stake here", "0.500000000 SOMA in 1 object(s)"):
        assert text in shown.stdout, shown.stdout

    stakes = soma_ray(tmp_path, "stake", "list")
    assert stakes.returncode == 0, stakes.stderr
    assert biggest.model_id in stakes.stdout and "0.500000000" in stakes.stdout
    assert "1 object(s), 0.500000000 SOMA in 1 pool(s)" in stakes.stdout
    assert secret not in "".join(p.stdout + p.stderr for p in (listed, shown, stakes))

    unknown = soma_ray(tmp_path, "models", "show", MODEL)
    assert unknown.returncode == 1 and len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr


def test_stake_list_without_a_wallet_says_how_to_make_one(tmp_path: Path) -> None:
    result = soma_ray(tmp_path, "stake", "list")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "wallet" in result.stderr, result.stderr


# -- commands that sign: through the wallet's driver actor (Ray) ----------------------------------------


@pytest.mark.slow
def test_stake_add_withdraw_and_commission_through_the_driver(tmp_path: Path, ray_session: Any) -> None:
    address = ray_session.get_runtime_context().gcs_address
    assert soma_ray(tmp_path, "wallet", "new").returncode == 0
    for _ in range(3):
        assert soma_ray(tmp_path, "sim", "faucet").returncode == 0
    sim = SimChain(SimSettings(path=tmp_path / ".soma-ray" / "sim"))
    model = max(asyncio.run(sim.active_models()), key=lambda m: m.stake).model_id

    added = soma_ray(tmp_path, "stake", "add", model, "0.5", ray_address=address)
    assert added.returncode == 0, added.stderr
    assert f"stake 0.500000000 SOMA on {model}: done" in added.stdout
    listed = soma_ray(tmp_path, "stake", "list")
    assert "0.500000000" in listed.stdout

    assert soma_ray(tmp_path, "sim", "advance-epoch").returncode == 0
    withdrawn = soma_ray(tmp_path, "stake", "withdraw", model, ray_address=address)
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert f"withdraw 0.500000000 SOMA on {model}: done" in withdrawn.stdout
    nothing = soma_ray(tmp_path, "stake", "withdraw", model, ray_address=address)
    assert nothing.stdout.strip() == f"no stake of this wallet in {model}"

    # a genesis model is not ours: the driver refuses in one line before sending
    refused = soma_ray(tmp_path, "model", "commission", "300", "--model", model, ray_address=address)
    assert refused.returncode == 1 and "not by this wallet" in refused.stderr, refused.stderr
    no_model = soma_ray(tmp_path, "model", "commission", "300", ray_address=address)
    assert no_model.returncode == 1 and "no model yet" in no_model.stderr, no_model.stderr
    soma_ray(tmp_path, "driver", "stop", ray_address=address)
