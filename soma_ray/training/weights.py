"""Weights in and out of training: warm starts, and float32 canonical weights from an engine.

Canonical means exactly what `Model.save_bytes()` writes (protocol.md §2.1): float32,
burn's [in, out] linear layout, gamma/beta norm names, sorted keys.
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from typing import Any

import torch
from soma_models.v1.torch import Model, ModelConfig

from soma_ray.protocol.architecture import ArchitectureSettings
from soma_ray.training.errors import WarmStartError

PREFIX = "model."  # ScoringObjective holds the Model as `self.model`


def model_config(arch: ArchitectureSettings, dropout: float = 0.0) -> ModelConfig:
    return ModelConfig(dropout_rate=dropout, **arch.shape())


def canonical_bytes(state_dict: dict[str, torch.Tensor], arch: ArchitectureSettings) -> bytes:
    """A torch state dict of a V1 model (with or without the `model.` prefix) → canonical safetensors."""
    model = Model(model_config(arch))
    plain = {k.removeprefix(PREFIX): v.detach().to("cpu", torch.float32) for k, v in state_dict.items()}
    model.load_state_dict(plain)
    data: bytes = model.save_bytes()
    return data


def load_canonical(data: bytes, arch: ArchitectureSettings, dropout: float = 0.0) -> Model:
    """Canonical safetensors → `Model`; a clear error when the shapes or keys do not fit."""
    try:
        model: Model = Model.load_bytes(data, model_config(arch, dropout))
    except Exception as err:  # noqa: BLE001 - safetensors/torch raise many kinds
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WarmStartError(
            f"warm-start weights do not fit the {arch.preset} architecture ({first[:200]}); "
            "check `model:` in the config"
        ) from None
    return model


@torch.no_grad()
def full_fp32_state_dict(engine: Any) -> dict[str, torch.Tensor]:
    """The consolidated float32 weights of a DeepSpeed engine, on CPU, on every rank.

    A collective: every rank must call it. With bf16 these are the optimiser's float32 master
    weights (what a checkpoint export yields), not the bf16 working copy; with ZeRO-3 the
    partitions are gathered.
    """
    from deepspeed.utils import safe_get_full_fp32_param  # type: ignore[import-untyped]

    state: dict[str, torch.Tensor] = {}
    for name, param in engine.module.named_parameters():
        full = safe_get_full_fp32_param(param)
        if full is None:  # no ZeRO fp32 partition behind it: the parameter itself is float32 and whole
            full = param.detach()
        state[name.removeprefix(PREFIX)] = full.to("cpu", torch.float32).clone()
    return state


def warm_start_bytes(config: Any) -> bytes | None:
    """Canonical safetensors bytes for `config.warm_start` (a TrainConfig), or None.

    Runs on the job's driver, once: the bytes travel to the workers through the object store.
    """
    warm = config.warm_start
    if warm.path is not None:
        try:
            return bytes(warm.path.read_bytes())
        except OSError as err:
            raise WarmStartError(f"cannot read warm-start weights {warm.path}: {err.strerror}") from None
    if warm.url is not None:
        return _download(warm.url)
    if warm.model_id is not None:
        return asyncio.run(_network_model(config))
    return None


def _download(url: str) -> bytes:
    from soma_ray.storage.errors import StorageError
    from soma_ray.storage.fetcher import USER_POLICY, fetch

    try:
        return fetch(url, policy=USER_POLICY)  # the user's own config: any scheme they chose
    except StorageError as err:
        raise WarmStartError(f"warm-start weights unreachable: {err}") from None


async def _network_model(config: Any) -> bytes:
    """Fetch, verify and decrypt a revealed network model (fine-tune a rival)."""
    from soma_ray.chain.errors import ManifestCountMismatch
    from soma_ray.chain.factory import open_chain
    from soma_ray.chain.sim.serve import serving_blobs
    from soma_ray.scoring.store import ModelStore, ModelUnavailable
    from soma_ray.storage.fetcher import policy_for

    model_id = config.warm_start.model_id
    serving = serving_blobs(config.chain.sim) if config.chain.network == "sim" else nullcontext()
    chain = await open_chain(config.chain)
    try:
        try:
            manifest = (await chain.model_manifests([model_id]))[0]
        except ManifestCountMismatch:
            raise WarmStartError(f"model {model_id} has no weights on the network (unknown or not committed)") from None
        store = ModelStore(
            cache_dir=_scratch(), model_config=model_config(config.architecture),
            policy=policy_for(config.chain.network),  # the manifest comes from the chain: untrusted
        )
        with serving:
            try:
                model = store.load(model_id, manifest)
            except ModelUnavailable as err:
                raise WarmStartError(str(err)) from None
        data: bytes = model.save_bytes()
        return data
    finally:
        await chain.close()


def _scratch() -> Any:
    import tempfile
    from pathlib import Path

    return Path(tempfile.gettempdir()) / "soma-ray" / "warm-start-cache"
