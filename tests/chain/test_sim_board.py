"""The seeded genesis board of the simulated network (SimSettings.genesis_board)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from soma_ray.chain.sim import SimChain, SimSettings
from soma_ray.chain.sim.accounts import owner_keypair
from soma_ray.chain.sim.board import plan_board
from soma_ray.chain.sim.genesis import genesis_owner
from soma_ray.chain.sim.settings import DEFAULT_COMMISSION_BANDS, GenesisBoard
from soma_ray.protocol.commitments import canonical_address
from soma_ray.protocol.constants import SHANNONS_PER_SOMA
from tests.conftest import small_sim_settings

BOARD = {"seed": 7, "owners": 5, "clusters": 4, "cluster_spread": 0.3,
         "stake_min": SHANNONS_PER_SOMA, "stake_max": 100 * SHANNONS_PER_SOMA}
# Today's genesis of `small_sim_settings` at path "sim", fingerprinted with the code before the board
# existed: a network made without the new sections must keep every byte (chain id, ids, blobs).
DEFAULT_GENESIS_SHA256 = "b543149dacb6482a807aaa571678323b53b30845d336df09cdb6c789f4f5b39f"


def board_sim(root: Path, **board: object) -> SimChain:
    return SimChain(small_sim_settings(root, genesis_models=24, genesis_board={**BOARD, **board}))


def cosine_distances(vectors: np.ndarray) -> np.ndarray:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(1.0 - unit @ unit.T)


# Columns added to the sim's tables after the fingerprint was pinned: at genesis they hold their
# default, which is checked, and they are left out of the digest.
LATER_COLUMNS = {"pending_withdraw": 0}


def fingerprint(settings: SimSettings) -> str:
    digest = hashlib.sha256()
    with sqlite3.connect(settings.db_path) as conn:
        for query in ("SELECT state FROM system", "SELECT * FROM models ORDER BY id",
                      "SELECT * FROM targets ORDER BY seq", "SELECT * FROM coins ORDER BY id"):
            cursor = conn.execute(query)
            names = [d[0] for d in cursor.description]
            for row in cursor:
                kept = []
                for name, value in zip(names, row, strict=True):
                    if name in LATER_COLUMNS:
                        assert value == LATER_COLUMNS[name], (name, value)
                    else:
                        kept.append(value)
                digest.update(repr(tuple(kept)).encode())
    for path in sorted(p for p in settings.blob_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(settings.blob_dir).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


async def test_board_has_its_models_owners_stakes_and_commissions(tmp_path: Path) -> None:
    sim = board_sim(tmp_path)
    models = await sim.active_models()
    assert len(models) == 24
    owners = {canonical_address(owner_keypair(k).address()) for k in range(5)}
    assert {m.owner for m in models} == owners  # every owner holds at least one model
    stakes = [m.stake for m in models]
    assert min(stakes) == SHANNONS_PER_SOMA and max(stakes) == 100 * SHANNONS_PER_SOMA
    assert max(stakes) / min(stakes) >= 100
    assert len(set(stakes)) == 24  # spread, not a few levels
    bands = DEFAULT_COMMISSION_BANDS
    for m in models:
        assert any(low <= m.commission_rate <= high for low, high in bands), m.commission_rate
        assert m.next_epoch_commission_rate == m.commission_rate
    used = {next(i for i, (lo, hi) in enumerate(bands) if lo <= m.commission_rate <= hi) for m in models}
    assert used == set(range(len(bands)))
    # Real models: weights served and matching their commitments (fetch_model verifies the checksum).
    manifest = (await sim.get_model(models[0].model_id)).manifest
    assert manifest is not None and len(await sim.fetch_model(models[0].model_id)) == manifest.size


async def test_board_embeddings_sit_in_clusters(tmp_path: Path) -> None:
    sim = board_sim(tmp_path)
    plan = plan_board(GenesisBoard.model_validate(BOARD), 24, sim.settings.architecture.embedding_dim)
    by_embedding = {p.embedding.tobytes(): p.cluster for p in plan}
    models = await sim.active_models()
    clusters = np.array([by_embedding[m.embedding.astype(np.float32).tobytes()] for m in models])
    assert set(clusters) == {0, 1, 2, 3}
    distances = cosine_distances(np.stack([m.embedding for m in models]))
    same = clusters[:, None] == clusters[None, :]
    np.fill_diagonal(same, False)
    within, between = distances[same].mean(), distances[clusters[:, None] != clusters[None, :]].mean()
    assert within < between / 4, (within, between)


async def test_board_is_a_function_of_its_seed(tmp_path: Path) -> None:
    def view(models: list) -> list:  # type: ignore[type-arg]
        return sorted((m.owner, m.stake, m.commission_rate, m.embedding.tobytes()) for m in models)

    a = await board_sim(tmp_path / "a").active_models()
    b = await board_sim(tmp_path / "b").active_models()
    c = await board_sim(tmp_path / "c", seed=8).active_models()
    assert view(a) == view(b)
    assert view(a) != view(c)


async def test_without_a_board_genesis_is_what_it_always_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = small_sim_settings(Path("."))  # path "sim": the chain id follows the settings
    sim = SimChain(settings)
    assert fingerprint(settings) == DEFAULT_GENESIS_SHA256
    models = await sim.active_models()
    assert {m.owner for m in models} == {canonical_address(genesis_owner().address())}
    assert sorted(m.stake for m in models) == [settings.genesis_model_stake * (i + 1) for i in range(4)]
    assert {m.commission_rate for m in models} == {0}


def test_bad_board_settings_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="stake_max .* is below stake_min"):
        small_sim_settings(tmp_path, genesis_board={"stake_min": 10, "stake_max": 5})
    with pytest.raises(ValidationError, match=r"commission_bands \[500, 100\]"):
        small_sim_settings(tmp_path, genesis_board={"commission_bands": [[500, 100]]})
    with pytest.raises(ValidationError, match="owner"):
        small_sim_settings(tmp_path, genesis_board={"owner": 3})  # extra="forbid"
