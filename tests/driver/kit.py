"""Driver test kit: a served small network, a funded wallet, commit artifacts without training."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from pathlib import Path

import numpy as np
import torch
from soma_models.v1.torch import Model, ModelConfig
from soma_sdk import Keypair

from soma_ray.chain.sim import SimChain
from soma_ray.driver.artifacts import Artifacts
from soma_ray.driver.driver import Driver
from soma_ray.driver.settings import DriverSettings
from soma_ray.protocol.commitments import commitment, embedding_commitment
from soma_ray.storage import BlobStore, LocalBlobStore
from soma_ray.training.export import MANIFEST_FILE, WEIGHTS_FILE


def write_artifacts(folder: Path, sim: SimChain, seed: int = 0) -> Path:
    """A real export-format artifacts folder for the network's architecture (random weights)."""
    arch = sim.settings.architecture
    torch.manual_seed(seed)
    weights = Model(ModelConfig(dropout_rate=0.0, **arch.shape())).save_bytes()
    embedding = np.random.default_rng(seed).normal(size=arch.embedding_dim).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WEIGHTS_FILE).write_bytes(weights)
    artifacts = Artifacts(
        run="test", step=1, architecture=arch.model_dump(), heldout_loss=5.0, heldout_samples=1,
        embedding=[float(x) for x in embedding], embedding_commitment=embedding_commitment(embedding),
        weights_file=WEIGHTS_FILE, weights_size=len(weights), weights_blake2b=commitment(weights),
        checkpoint="none", created_at=0.0,
    )
    (folder / MANIFEST_FILE).write_text(json.dumps(dataclasses.asdict(artifacts)))
    return folder / MANIFEST_FILE


def make_driver(
    sim: SimChain, server_url: str, signer: Keypair, root: Path, store: BlobStore | None = None, **settings: object
) -> Driver:
    """A driver over `sim`, uploading to `store` (default: the network's own served blob dir)."""
    store = store or LocalBlobStore(sim.settings.blob_dir, server_url)
    driver_settings = DriverSettings(state_path=root / "driver.db", **settings)  # type: ignore[arg-type]
    return Driver(sim, signer, store, driver_settings, "sim")


def chain_txs(sim: SimChain, kind: str, sender: str, ok: bool | None = True) -> int:
    """How many transactions of `kind` the network executed from `sender`."""
    with sqlite3.connect(sim.settings.path / "sim.db") as conn:
        query = "SELECT COUNT(*) FROM txs WHERE kind = ? AND sender = ?"
        args: list[object] = [kind, sender]
        if ok is not None:
            query += " AND ok = ?"
            args.append(int(ok))
        return int(conn.execute(query, args).fetchone()[0])


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
