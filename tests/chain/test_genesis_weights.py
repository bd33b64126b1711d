"""Genesis models: deterministic arrgen weights, encrypted with soma-sdk, served over HTTP."""

from __future__ import annotations

from pathlib import Path

import torch
from soma_models.v1.torch import Model
from soma_sdk import SomaClient

from soma_ray.chain.sim import SimChain
from soma_ray.chain.sim.genesis import genesis_weights, model_config
from soma_ray.protocol.commitments import commitment
from soma_ray.storage import BlobHTTPServer, fetch_url
from tests.conftest import small_sim_settings


async def test_genesis_weights_download_decrypt_and_run(tmp_path: Path) -> None:
    blobs = tmp_path / "sim" / "blobs"
    blobs.mkdir(parents=True)
    with BlobHTTPServer(blobs).start() as server:
        chain = SimChain(small_sim_settings(tmp_path, blob_url=server.url))
        target = (await chain.all_targets("open"))[0]
        manifests = await chain.model_manifests(target.model_ids)
        assert len(manifests) == 3
        manifest = manifests[0]
        assert manifest.url.startswith(server.url)
        encrypted = fetch_url(manifest.url)  # over real HTTP, as a validator would
        assert len(encrypted) == manifest.size and commitment(encrypted) == manifest.checksum
        assert manifest.decryption_key is not None
        plain = SomaClient.decrypt_weights(encrypted, manifest.decryption_key)

    arch = chain.settings.architecture
    model = Model.load_bytes(plain, model_config(arch)).eval()
    tokens = torch.randint(0, 256, (1, 8))
    with torch.no_grad():
        logits = model(tokens, torch.arange(8).unsqueeze(0))
    assert logits.shape == (1, 8, 264) and torch.isfinite(logits).all()


async def test_fetch_model_falls_back_to_the_networks_own_blobs(tmp_path: Path) -> None:
    chain = SimChain(small_sim_settings(tmp_path, blob_url="http://127.0.0.1:1"))  # nothing listens
    model_id = (await chain.active_models())[0].model_id
    encrypted = await chain.fetch_model(model_id)
    manifest = (await chain.model_manifests([model_id]))[0]
    assert commitment(encrypted) == manifest.checksum


def test_genesis_weights_are_deterministic(tmp_path: Path) -> None:
    arch = small_sim_settings(tmp_path).architecture
    assert genesis_weights(arch, 0) == genesis_weights(arch, 0)
    assert genesis_weights(arch, 0) != genesis_weights(arch, 1)
