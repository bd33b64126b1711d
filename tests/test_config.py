"""Config loading: every shipped recipe validates; bad input is one line naming file and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from soma_ray.config import JOB_CONFIGS, ConfigError, CycleConfig, RunConfig, load_config, load_job_config

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "configs").glob("*.yaml"))
FULL_ENV = {
    "S3_BUCKET": "bucket",
    "S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "S3_SECRET_ACCESS_KEY": "very-secret-value-123456",
    "SOMA_SECRET_KEY": "00" * 32,
}


def test_there_are_recipes_for_every_job_kind() -> None:
    kinds = {load_job_config(p, env=FULL_ENV).kind for p in RECIPES}
    assert kinds == set(JOB_CONFIGS)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_loads(recipe: Path) -> None:
    config = load_job_config(recipe, env=FULL_ENV)
    assert isinstance(config, JOB_CONFIGS[config.kind])


def test_env_interpolation_fills_secrets_without_showing_them(tmp_path: Path) -> None:
    config = load_job_config(REPO / "configs" / "testnet.yaml", env=FULL_ENV)
    assert config.storage.s3 is not None
    assert config.storage.s3.secret_access_key is not None
    assert config.storage.s3.secret_access_key.get_secret_value() == FULL_ENV["S3_SECRET_ACCESS_KEY"]
    assert FULL_ENV["S3_SECRET_ACCESS_KEY"] not in repr(config)
    assert FULL_ENV["S3_SECRET_ACCESS_KEY"] not in config.model_dump_json()


def test_missing_env_var_names_field_and_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load_job_config(REPO / "configs" / "testnet.yaml", env={})
    assert str(err.value) == (
        f"{REPO / 'configs' / 'testnet.yaml'}: storage.s3.bucket: environment variable S3_BUCKET is not set; "
        "export it or add it to .env"
    )


def test_default_values_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("kind: run\nchain:\n  rpc_url: ${MY_RPC:-http://127.0.0.1:9000}\n")
    assert load_config(RunConfig, recipe, env={}).chain.rpc_url == "http://127.0.0.1:9000"
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MY_RPC=http://from-dotenv:1\n")
    monkeypatch.delenv("MY_RPC", raising=False)
    assert load_config(RunConfig, recipe).chain.rpc_url == "http://from-dotenv:1"
    monkeypatch.setenv("MY_RPC", "http://from-env:2")
    assert load_config(RunConfig, recipe).chain.rpc_url == "http://from-env:2"


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("kind: run\nchain:\n  netwrok: sim\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: chain\.netwrok: unknown key"):
        load_config(RunConfig, recipe, env={})


def test_set_overrides_keep_types_and_reach_nested_fields(tmp_path: Path) -> None:
    recipe = REPO / "configs" / "sim.yaml"
    config = load_config(
        RunConfig, recipe, ["run.advance_epochs=3", "chain.sim.architecture.preset=v1"], env={}
    )
    assert config.run.advance_epochs == 3
    assert config.chain.sim.architecture.embedding_dim == 2048
    with pytest.raises(ConfigError, match=r"run\.advance_epochs: .*integer.*\(got 'many'\)"):
        load_config(RunConfig, recipe, ["run.advance_epochs=many"], env={})
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        load_config(RunConfig, recipe, ["run.advance_epochs"], env={})


def test_bad_values_from_env_are_never_echoed(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("kind: run\nrun:\n  advance_epochs: ${LEAKY}\n")
    with pytest.raises(ConfigError) as err:
        load_config(RunConfig, recipe, env={"LEAKY": "s3cr3t-value"})
    assert "s3cr3t-value" not in str(err.value)
    assert "run.advance_epochs" in str(err.value)


def test_bad_network_and_yaml_syntax(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("kind: run\nchain:\n  network: mainnet\n")
    with pytest.raises(ConfigError, match=r"chain\.network: .*sim, testnet, localnet.*\(got 'mainnet'\)"):
        load_config(RunConfig, recipe, env={})
    recipe.write_text("kind: run\nchain: [unclosed\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: line \d+:"):
        load_config(RunConfig, recipe, env={})
    with pytest.raises(ConfigError, match="kind: must be one of run, submit, train, sweep"):
        recipe.write_text("kind: mine\n")
        load_job_config(recipe, env={})


def test_sim_settings_reject_unknown_protocol_params(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("kind: run\nchain:\n  sim:\n    params:\n      bond_per_byte: 1\n")
    with pytest.raises(ConfigError, match=r"chain\.sim: .*unknown protocol parameter\(s\): bond_per_byte"):
        load_config(RunConfig, recipe, env={})


def test_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("kind: run\nrun:\n  advance_epochs: -1\n")
    proc = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "lifecycle.py"), "--config", str(recipe)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {recipe}: run.advance_epochs: ")


def test_with_absolute_paths_makes_every_local_path_absolute_and_keeps_uris(tmp_path: Path) -> None:
    """One rule (`soma_ray.paths`) for the driver actor's config, Train workers and the cycle."""
    from soma_ray.config import TrainConfig

    config = TrainConfig.model_validate({
        "data": {"source": "files", "path": "corpus"},
        "heldout": {"data": {"source": "jsonl", "path": "held.jsonl"}},
        "warm_start": {"path": "~/w.safetensors"},
        "training": {"storage_path": "runs"},
        "export": {"dir": ".soma-ray/artifacts"},
    })
    moved = config.with_absolute_paths(tmp_path)
    assert moved.data.path == tmp_path / "corpus"
    assert moved.heldout.data is not None and moved.heldout.data.path == tmp_path / "held.jsonl"
    assert moved.warm_start.path == Path.home() / "w.safetensors"
    assert moved.training.storage_path == str(tmp_path / "runs")
    assert moved.export.dir == tmp_path / ".soma-ray/artifacts"
    assert moved.wallet.key_file == tmp_path / ".soma-ray/wallet.key"
    assert moved.driver.state_path == tmp_path / ".soma-ray/driver.db"
    assert moved.storage.local.root == tmp_path / ".soma-ray/sim/blobs"
    assert moved.chain.sim.path.is_absolute() and moved.chain.sim.path.is_relative_to(tmp_path)
    uri = config.model_copy(update={"training": config.training.model_copy(update={"storage_path": "s3://b/runs"})})
    assert uri.with_absolute_paths(tmp_path).training.storage_path == "s3://b/runs"
    assert moved.with_absolute_paths(tmp_path / "elsewhere") == moved  # absolute paths stay put


def test_the_board_recipe_is_a_board_and_the_cycle_stays_small() -> None:
    board = load_job_config(REPO / "configs" / "board.yaml", env=FULL_ENV)
    cycle = load_job_config(REPO / "configs" / "cycle.yaml", env=FULL_ENV)
    assert isinstance(board, CycleConfig) and isinstance(cycle, CycleConfig)
    sim = board.chain.sim
    assert sim.genesis_models == 24 and sim.genesis_board is not None and sim.genesis_board.owners > 1
    assert sim.genesis_board.stake_max >= 100 * sim.genesis_board.stake_min
    assert sim.rivals is not None and sim.rivals.fill_share > 0 and board.cycle.warmup_epochs > 0
    small = cycle.chain.sim
    assert (small.genesis_models, small.genesis_board, small.rivals, cycle.cycle.warmup_epochs) == (4, None, None, 0)
