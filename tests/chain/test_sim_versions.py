"""Object versions on the simulated network (protocol.md §13.3): Lamport versions, previous
transactions, tombstones, and network files made before versions were kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import base58
import numpy as np
import pytest
from soma_sdk import Keypair

from soma_ray.chain import errors
from soma_ray.chain.sim import SimChain
from soma_ray.chain.sim.objects import SYSTEM_STATE_ID, load_object
from soma_ray.chain.sim.store import MIGRATIONS, connect
from soma_ray.chain.types import TargetStatus
from soma_ray.protocol.wire.digests import from_base58
from tests.conftest import small_sim_settings


def state_of(sim: SimChain, object_id: str) -> Any:
    return sim._read(lambda conn, s: load_object(conn, object_id))


async def test_every_written_object_gets_the_lamport_version(sim: SimChain, fund: Any) -> None:
    kp = await fund(2)
    coins = await sim.coins(kp.address())
    before = {c.id: state_of(sim, c.id) for c in coins}
    assert {o.version for o in before.values()} == {1}  # faucet coins: created by a transaction without inputs

    tx = await sim.merge_coins(kp)
    (merged,) = await sim.coins(kp.address())
    after = state_of(sim, merged.id)
    assert after.version == 2 and after.previous_transaction == base58.b58decode(tx.digest)
    (gone,) = tx.deleted
    assert state_of(sim, gone) is None
    tomb = sim._read(lambda conn, s: conn.execute("SELECT version FROM tombstones WHERE id = ?", (gone,)).fetchone())
    assert tomb["version"] == 2

    system = state_of(sim, SYSTEM_STATE_ID)
    model_id = await sim.create_model(kp)
    assert model_id
    system_after = state_of(sim, SYSTEM_STATE_ID)
    coin_after = state_of(sim, merged.id)
    # inputs: the gas coin (version 2) and the system state; every write at max + 1
    assert system_after.version == coin_after.version == max(system.version, 2) + 1
    (staked,) = sim._read(lambda conn, s: conn.execute("SELECT * FROM staked WHERE owner = ?", (merged.owner,)).fetchall())
    assert staked["version"] == coin_after.version


async def test_a_fill_writes_the_target_and_a_failure_still_bumps_the_inputs(sim: SimChain, fund: Any) -> None:
    kp = await fund(2)
    target = (await sim.all_targets(TargetStatus.OPEN))[0]
    t0 = state_of(sim, target.id)
    assert t0.version == 1  # created by genesis
    await sim.submit_data(
        kp, target.id, data=b"x" * 10, data_url="http://127.0.0.1:9/x", model_id=target.model_ids[0],
        embedding=np.zeros_like(target.embedding), distance_score=0.0, loss_score=[1.0],
    )
    t1 = state_of(sim, target.id)
    assert t1.version > t0.version and t1.contents != t0.contents

    gas = max(await sim.coins(kp.address()), key=lambda c: c.balance)
    g0 = state_of(sim, gas.id)
    with pytest.raises(errors.NotModelOwner):  # executed, failed
        await sim.reveal_model(kp, target.model_ids[0], decryption_key="1" * 32, embedding=[0.0])
    g1 = state_of(sim, gas.id)
    assert g1.version > g0.version  # the gas coin is written even by a failed transaction


async def test_a_network_file_from_before_versions_still_works(tmp_path: Path) -> None:
    """Files made before versions were kept: coins at their last transaction's sequence number, no
    previous-transaction column, no tombstones. They open, read as before, and go on."""
    settings = small_sim_settings(tmp_path)
    sim = SimChain(settings)
    kp = Keypair.generate()
    await sim.faucet(kp.address())
    await sim.faucet(kp.address())
    (seq, digest), *_ = sim._read(
        lambda conn, s: [(r["seq"], r["digest"]) for r in conn.execute("SELECT seq, digest FROM txs ORDER BY seq DESC")]
    )
    await sim.close()

    conn = connect(settings.db_path)
    conn.execute("UPDATE coins SET version = ?", (seq,))  # the old rule: version = the writer's seq
    for table, column, _ in reversed(MIGRATIONS):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("DROP TABLE tombstones")
    conn.close()

    again = SimChain(settings)  # migrates
    coins = await again.coins(kp.address())
    assert len(coins) == 2
    for coin in coins:
        obj = state_of(again, coin.id)
        assert obj.version == seq and obj.previous_transaction == from_base58(digest)
    tx = await again.merge_coins(kp)
    (merged,) = await again.coins(kp.address())
    assert state_of(again, merged.id).version == seq + 1
    assert state_of(again, merged.id).previous_transaction == base58.b58decode(tx.digest)
    columns = {r[1] for r in sqlite3.connect(settings.db_path).execute("PRAGMA table_info(coins)")}
    assert "prev_tx" in columns
