"""One multi-epoch game for the review's tests, played once: a clustered genesis board, background
rivals who create models, fill a share of each epoch's targets and claim, and our wallet's real
`Driver` (in process, no Ray) creating, committing and revealing a model, submitting to targets
that list it and claiming what is due. A board snapshot is stored at each new epoch, as the
driver actor's hook does; a near miss and a job's compute are recorded as the jobs do.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from soma_ray.chain.sim import SimChain
from soma_ray.chain.types import TargetStatus
from soma_ray.driver.driver import Driver
from soma_ray.protocol.commitments import canonical_address
from soma_ray.protocol.constants import SHANNONS_PER_SOMA
from soma_ray.review.records import ComputeUse, NearMiss, Records, records_path
from soma_ray.review.run import record_snapshot
from soma_ray.storage import BlobHTTPServer
from tests.conftest import small_sim_settings
from tests.driver.kit import make_driver, write_artifacts

EPOCHS = 7  # epochs played after the commit
OUR_STAKE = 3 * SHANNONS_PER_SOMA
DATA = b"review test sample " * 20


@dataclass
class Played:
    sim: SimChain
    driver: Driver
    address: str
    model_id: str
    fills: list[str]  # targets we filled, as the chain recorded them
    near_miss: NearMiss
    compute: ComputeUse
    first_seq: int  # the network's first transaction sent by the driver (the test's own merge is before it)


async def play(root: Path, blob_url: str) -> Played:
    sim = SimChain(small_sim_settings(
        root, blob_url=blob_url, genesis_models=8, genesis_targets=12,
        params={"target_initial_targets_per_epoch": 12},
        genesis_board={"seed": 3, "owners": 3, "clusters": 2, "stake_min": SHANNONS_PER_SOMA // 5,
                       "stake_max": 4 * SHANNONS_PER_SOMA},
        rivals={"seed": 4, "accounts": 2, "fill_share": 0.3, "new_models_per_epoch": 1, "max_models": 3,
                "model_stake": 2 * SHANNONS_PER_SOMA, "add_stake": SHANNONS_PER_SOMA // 2},
    ))
    from soma_sdk import Keypair

    from soma_ray.protocol.commitments import blake2b256

    signer = Keypair.from_secret_key(blake2b256(b"soma-ray/tests/review/us"))
    for _ in range(6):
        await sim.faucet(signer.address())
    await sim.merge_coins(signer)  # one coin to stake from
    with sqlite3.connect(sim.settings.path / "sim.db") as conn:
        first_seq = int(conn.execute("SELECT MAX(seq) FROM txs").fetchone()[0]) + 1
    driver = make_driver(sim, blob_url, signer, root / "wallet", model_stake=OUR_STAKE)
    await driver.start()
    state_path = driver.state.path
    await record_snapshot(sim, state_path)
    committed = await driver.commit(str(write_artifacts(root / "artifacts", sim)))
    fills: list[str] = []
    records = Records(records_path(state_path))
    near_miss = compute = None
    for _ in range(EPOCHS):
        await sim.advance_epoch()
        await driver.tick()  # reveal, claims
        epoch = await record_snapshot(sim, state_path)
        targets = await sim.all_targets(TargetStatus.OPEN)
        mine = [t for t in targets if committed.model_id in t.model_ids]
        for target in (mine or targets)[:2]:
            embedding = np.ones(len(target.embedding), np.float32).tolist()
            model = committed.model_id if target in mine else target.model_ids[0]
            if await driver.submit(target.id, DATA, model, embedding, 0.0, 1.0) is not None:
                fills.append(target.id)
        if targets and near_miss is None:
            near_miss = NearMiss(epoch, targets[-1].id, targets[-1].model_ids[0], 1.01,
                                 targets[-1].distance_threshold)
            records.add_near_miss(near_miss)
        if compute is None:
            compute = ComputeUse(epoch, "submit", 1800.0, 2.0)  # 1 GPU hour
            records.add_compute(compute)
    await driver.claim()
    assert near_miss is not None and compute is not None
    return Played(sim, driver, canonical_address(signer.address()), committed.model_id, fills, near_miss, compute,
                  first_seq)


@pytest.fixture(scope="session")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    root = tmp_path_factory.mktemp("review")
    blobs = root / "sim" / "blobs"
    blobs.mkdir(parents=True)
    server = BlobHTTPServer(blobs).start()
    try:
        yield asyncio.run(play(root, server.url))
    finally:
        server.stop()
