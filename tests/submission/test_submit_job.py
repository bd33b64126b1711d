"""The submitter fills targets on the simulated network, with the scoring pool on Ray, and what it
submits passes the validators' audit: same winner, loss and distance on re-scoring (§1.8)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr
from soma_sdk import Keypair

from soma_ray.chain.config import ChainConfig, WalletConfig
from soma_ray.chain.sim.genesis import model_config
from soma_ray.data.config import DataConfig
from soma_ray.driver.actions import ActionStatus, SubmitPayload
from soma_ray.driver.actor import stop_driver
from soma_ray.driver.state import DriverState
from soma_ray.protocol.commitments import canonical_address, commitment
from soma_ray.scoring.evaluate import evaluate
from soma_ray.scoring.select import select
from soma_ray.scoring.store import ModelStore
from soma_ray.storage.config import LocalStorageConfig, StorageConfig
from soma_ray.storage.factory import open_blob_store
from soma_ray.submission.config import SubmitConfig
from soma_ray.submission.job import SubmissionRun, run_submitter
from soma_ray.submission.submitter import DirectSubmitter


def within_audit_tolerance(x: float, y: float) -> bool:
    """burn's Tolerance::permissive (§1.8)."""
    return x == y or abs(x - y) < max(0.01, 0.01 * max(abs(x), abs(y)))


@pytest.fixture
def world(tmp_path: Path, served_sim: Any) -> Any:
    sim, server = served_sim
    return tmp_path, server, sim


def test_submitter_fills_targets_that_pass_the_audit(world: Any, ray_session: Any) -> None:
    root, server, sim = world
    keypair = Keypair.generate()
    for _ in range(2):
        asyncio.run(sim.faucet(keypair.address()))
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(f"sample {i}: " + "abc " * (i % 13 + 1) for i in range(120)))
    config = SubmitConfig(
        chain=ChainConfig(network="sim", sim=sim.settings),
        storage=StorageConfig(kind="local", local=LocalStorageConfig(root=root / "sim" / "blobs", base_url=server.url)),
        wallet=WalletConfig(secret_key=SecretStr(keypair.to_secret_key())),
        data=DataConfig(source="text", path=corpus, text_unit="line"),
        # two stages, so a rebuilt pipeline would show as new actors (issue 14: a fill refreshes the
        # target list and leaves the stages, and their resident models, alone)
        scoring={"batch_samples": 4, "cache_dir": root / "cache", "models_per_actor": 2, "num_cpus_per_actor": 0.5},
        submit={"max_fills": 3, "progress_interval_s": 1},
        driver={"state_path": root / "driver.db"},
    )
    epoch = asyncio.run(sim.info()).epoch
    planned = {m for t in asyncio.run(sim.all_targets("open")) for m in t.model_ids}  # the job's plan (mode all)
    try:
        report = run_submitter(config, chain=sim)  # hits go through the wallet's driver actor
    finally:
        stop_driver(config)
    assert asyncio.run(sim.info()).epoch == epoch, "one epoch, one pipeline"
    # one actor per stage, each loading each model of its shard once: fills did not restart the stages
    assert report.loads.max_per_actor == 1
    assert report.loads.total == len(planned), (report.loads.seen, planned)
    assert len({tag for tag, _ in report.loads.seen}) == -(-len(planned) // 2)  # stages of 2 models
    ledger = DriverState(root / "driver.db")
    done = ledger.actions(SubmitPayload, (ActionStatus.DONE,))
    assert sorted(a.payload.target_id for a in done) == sorted(report.fills)

    assert len(report.fills) == 3 and report.samples > 0 and report.scored_tokens > 0
    store = ModelStore(root / "audit-cache", model_config(sim.settings.architecture))
    db = sqlite3.connect(sim.db_path)
    for target_id in report.fills:
        target = asyncio.run(sim.get_target(target_id))
        assert target.status == "filled" and target.submitter == canonical_address(keypair.address())
        data = asyncio.run(sim.fetch_submission_data(target_id))  # downloaded from the uploaded URL
        assert target.data_url is not None and target.data_url.startswith(server.url)
        distance, loss_json = db.execute(
            "SELECT winning_distance, winning_loss FROM targets WHERE id = ?", (target_id,)
        ).fetchone()
        # the validators' audit: all of the target's models, seed 0, the official algorithm
        manifests = asyncio.run(sim.model_manifests(target.model_ids))
        evaluations = [evaluate(store.get(m, man), [data])[0] for m, man in zip(target.model_ids, manifests)]
        winner, audit_loss, _, audit_distance = select(evaluations, target.embedding)
        assert target.model_ids[winner] == target.winning_model_id
        assert len(json.loads(loss_json)) == 1
        assert within_audit_tolerance(json.loads(loss_json)[0], audit_loss)
        assert within_audit_tolerance(distance, audit_distance)
        assert json.loads(loss_json)[0] == pytest.approx(audit_loss, rel=1e-5)
        assert distance <= target.distance_threshold
        assert commitment(data) == db.execute(
            "SELECT data_checksum FROM targets WHERE id = ?", (target_id,)
        ).fetchone()[0]
    assert np.isfinite(report.best_distance)


def test_a_target_filled_by_someone_else_is_dropped(world: Any) -> None:
    root, server, sim = world
    me, rival = Keypair.generate(), Keypair.generate()
    for who in (me, rival):
        asyncio.run(sim.faucet(who.address()))
    target = asyncio.run(sim.all_targets("open"))[0]
    asyncio.run(sim.submit_data(
        rival, target.id, data=b"first", data_url=f"{server.url}/x", model_id=target.model_ids[0],
        embedding=target.embedding, distance_score=0.0, loss_score=[1.0],
    ))
    config = SubmitConfig(
        chain=ChainConfig(network="sim", sim=sim.settings),
        storage=StorageConfig(kind="local", local=LocalStorageConfig(root=root / "sim" / "blobs", base_url=server.url)),
        wallet=WalletConfig(secret_key=SecretStr(me.to_secret_key())),
        data=DataConfig(source="text", path=root),
    )
    store = open_blob_store(config.storage)
    model_ids = sorted(target.model_ids)
    batch = {  # one sample whose every model embedding points straight at the target: a sure hit
        "sample_id": np.array([0]),
        "data": np.array([b"second"], dtype=object),
        "losses": np.ones((1, len(model_ids)), np.float32),
        "embeddings": np.tile(target.embedding, (1, len(model_ids), 1)).astype(np.float32),
    }
    with asyncio.Runner() as loop:
        run = SubmissionRun(config, sim, DirectSubmitter(sim, me, store), loop)
        live = {target.id: target}
        run._take(batch, model_ids, live)
    assert run.report.hits == 1 and run.report.fills == [] and run.report.dropped_targets == 1
    assert live == {}
    assert asyncio.run(sim.get_target(target.id)).submitter == canonical_address(rival.address())
