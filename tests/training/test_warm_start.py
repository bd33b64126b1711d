"""Warm starts: a safetensors file, a URL, or a network model fetched through the chain layer —
and a one-step run from a warm start exports (almost exactly) the weights it started from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from soma_models.v1.torch import Model

from soma_ray.chain.sim import SimChain
from soma_ray.chain.sim.genesis import genesis_weights
from soma_ray.config import TrainConfig
from soma_ray.driver.artifacts import Artifacts
from soma_ray.storage import BlobHTTPServer
from soma_ray.training.errors import WarmStartError
from soma_ray.training.trainer import run_training
from soma_ray.training.weights import load_canonical, model_config, warm_start_bytes
from tests.training.kit import tiny_config


def _state(data: bytes, config: TrainConfig) -> dict[str, torch.Tensor]:
    return load_canonical(data, config.architecture).state_dict()


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=atol), key


def _sim_config(root: Path, sim: SimChain, **warm: Any) -> TrainConfig:
    config = tiny_config(root, num_workers=1)
    raw = config.model_dump(mode="json", exclude_unset=True, exclude={"model"})  # the network's architecture
    raw["chain"] = {"network": "sim", "sim": sim.settings.model_dump(mode="json")}
    raw["warm_start"] = warm
    return TrainConfig.model_validate(raw)


def test_warm_start_from_a_file_and_a_url(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    torch.manual_seed(11)
    weights = Model(model_config(config.architecture)).save_bytes()
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "start.safetensors").write_bytes(weights)
    config.warm_start.path = tmp_path / "w" / "start.safetensors"
    assert warm_start_bytes(config) == weights
    server = BlobHTTPServer(tmp_path / "w").start()
    try:
        config.warm_start.path = None
        config.warm_start.url = f"{server.url}/start.safetensors"
        assert warm_start_bytes(config) == weights
        config.warm_start.url = f"{server.url}/missing.safetensors"
        with pytest.raises(WarmStartError, match="unreachable"):
            warm_start_bytes(config)
    finally:
        server.stop()


def test_weights_of_another_architecture_are_one_clear_error(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    other = Model(model_config(config.architecture.model_copy(update={"embedding_dim": 16, "num_heads": 2})))
    with pytest.raises(WarmStartError, match="do not fit the custom architecture") as err:
        load_canonical(other.save_bytes(), config.architecture)
    assert "\n" not in str(err.value)


async def test_warm_start_from_a_network_model(served_sim: tuple[SimChain, Any], tmp_path: Path) -> None:
    sim, _ = served_sim
    model_id = (await sim.active_models())[0].model_id
    config = _sim_config(tmp_path, sim, model_id=model_id)
    fetched = _state(await __import__("asyncio").to_thread(warm_start_bytes, config), config)
    genesis = [_state(genesis_weights(config.architecture, i), config) for i in range(4)]
    assert any(all(torch.equal(fetched[k], g[k]) for k in g) for g in genesis)


def test_a_warm_started_run_starts_from_those_weights(
    ray_session: Any, served_sim: tuple[SimChain, Any], tmp_path: Path
) -> None:
    """One step at a negligible learning rate: the export equals the network model it started from."""
    sim, _ = served_sim
    import asyncio

    model_id = asyncio.run(sim.active_models())[0].model_id
    config = _sim_config(tmp_path, sim, model_id=model_id)
    config.training = config.training.model_copy(
        update={"name": "warm", "zero_stage": 1, "lr": 1e-12, "warmup_steps": 0, "max_steps": 1}
    )
    start = _state(warm_start_bytes(config) or b"", config)
    outcome = run_training(config)
    assert outcome.manifest is not None
    exported = Artifacts.read(outcome.manifest).weights_path(outcome.manifest).read_bytes()
    _assert_same_weights(_state(exported, config), start, atol=1e-6)
