"""The served network's seeded fault knobs (`chain.localnet.faults`), one test each, with the
unmodified soma-sdk client: what the client sees, and what the network then holds."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from soma_sdk import Keypair, SomaClient

from soma_ray.chain.served import LocalnetServer
from soma_ray.chain.served.config import FaultSettings
from soma_ray.chain.sim import SimChain
from tests.chain.served.kit import addr, served_settings

TIMEOUT = 60
PAYMENT = 0.25  # SOMA


async def started(tmp_path: Path, **faults: Any) -> tuple[LocalnetServer, SomaClient, Keypair]:
    server = LocalnetServer(served_settings(tmp_path, faults={"seed": 7, **faults}))
    await server.start()
    urls = server.urls
    client = await SomaClient(urls.rpc_url, faucet_url=urls.faucet_url)
    payer = Keypair.generate()
    await client.request_faucet(payer.address())
    return server, client, payer


@pytest.fixture
async def cleanup() -> AsyncIterator[list[LocalnetServer]]:
    servers: list[LocalnetServer] = []
    yield servers
    for server in servers:
        await server.stop()


def sim_of(server: LocalnetServer) -> SimChain:
    assert isinstance(server.sim, SimChain)
    return server.sim


async def test_reset_before_executing_changes_nothing(tmp_path: Path, cleanup: list[LocalnetServer]) -> None:
    server, client, payer = await started(tmp_path, reset_before=1.0, max_faults=1)
    cleanup.append(server)
    payee = addr(Keypair.generate().address())
    before = await sim_of(server).balance(addr(payer.address()))
    with pytest.raises(RuntimeError, match="connection reset"):
        await asyncio.wait_for(client.pay_coins(payer, [payee], [PAYMENT]), TIMEOUT)
    assert await sim_of(server).balance(payee) == 0
    assert await sim_of(server).balance(addr(payer.address())) == before  # not even a fee
    await asyncio.wait_for(client.pay_coins(payer, [payee], [PAYMENT]), TIMEOUT)  # the knob is spent
    assert await sim_of(server).balance(payee) == int(PAYMENT * 1e9)


async def test_a_dropped_answer_hides_an_executed_transaction(tmp_path: Path, cleanup: list[LocalnetServer]) -> None:
    server, client, payer = await started(tmp_path, drop_after=1.0, max_faults=1)
    cleanup.append(server)
    payee = addr(Keypair.generate().address())
    with pytest.raises(RuntimeError, match="connection reset"):
        await asyncio.wait_for(client.pay_coins(payer, [payee], [PAYMENT]), TIMEOUT)
    assert await sim_of(server).balance(payee) == int(PAYMENT * 1e9)  # it happened all the same


async def test_a_lock_conflict_runs_the_clients_retry(tmp_path: Path, cleanup: list[LocalnetServer]) -> None:
    server, client, payer = await started(tmp_path, lock_conflict=1.0, max_faults=2)
    cleanup.append(server)
    await client.request_faucet(payer.address())
    started_at = time.monotonic()
    # create_model names no coin besides the gas, which the client's retry picks afresh
    model_id = await asyncio.wait_for(client.create_model(payer, commission_rate=0), TIMEOUT)
    assert time.monotonic() - started_at >= 3.0  # two conflicts: the client waited 1 s, then 2 s
    assert (await sim_of(server).get_model(model_id)).owner == addr(payer.address())
    with sqlite3.connect(sim_of(server).settings.db_path) as db:
        (owned,) = db.execute("SELECT COUNT(*) FROM models WHERE owner = ?", (addr(payer.address()),)).fetchone()
    assert owned == 1  # executed once, though asked three times


async def test_a_delay_holds_the_answer(tmp_path: Path, cleanup: list[LocalnetServer]) -> None:
    server, client, payer = await started(tmp_path, delay_s=1.0)
    cleanup.append(server)
    payee = addr(Keypair.generate().address())
    started_at = time.monotonic()
    await asyncio.wait_for(client.pay_coins(payer, [payee], [PAYMENT]), TIMEOUT)
    assert time.monotonic() - started_at >= 1.0
    assert await sim_of(server).balance(payee) == int(PAYMENT * 1e9)


def _sixth_draw(seed: int) -> float:
    draws = random.Random(seed)
    return [draws.random() for _ in range(6)][5]


def _tx_epoch(server: LocalnetServer, kind: str) -> int:
    with sqlite3.connect(sim_of(server).settings.db_path) as db:
        (epoch,) = db.execute("SELECT epoch FROM txs WHERE kind = ? ORDER BY seq DESC LIMIT 1", (kind,)).fetchone()
    return int(epoch)


@pytest.mark.parametrize("before", [True, False])
async def test_the_epoch_ends_while_a_transaction_is_in_flight(
    tmp_path: Path, cleanup: list[LocalnetServer], before: bool
) -> None:
    server, client, payer = await started(tmp_path)
    cleanup.append(server)
    # the sixth seeded draw of a request decides before (< 0.5) or after (faults.py)
    seed = next(s for s in range(100) if (_sixth_draw(s) < 0.5) == before)
    server.faults.arm(FaultSettings(seed=seed, epoch_change=1.0, max_faults=1))
    start = (await sim_of(server).info()).epoch
    await asyncio.wait_for(client.pay_coins(payer, [addr(Keypair.generate().address())], [PAYMENT]), TIMEOUT)
    assert (await sim_of(server).info()).epoch == start + 1
    assert _tx_epoch(server, "PayCoins") == (start + 1 if before else start)
    assert server.faults.counts == {f"epoch_change_{'before' if before else 'after'}": 1}


async def test_epochs_last_epoch_min_txs(tmp_path: Path, cleanup: list[LocalnetServer]) -> None:
    server, client, payer = await started(tmp_path)
    cleanup.append(server)
    server.faults.arm(FaultSettings(seed=1, epoch_change=1.0, epoch_min_txs=2))
    start = (await sim_of(server).info()).epoch
    for _ in range(2):
        await asyncio.wait_for(client.pay_coins(payer, [addr(Keypair.generate().address())], [PAYMENT]), TIMEOUT)
    assert (await sim_of(server).info()).epoch == start  # two transactions: the epoch still lasts
    await asyncio.wait_for(client.pay_coins(payer, [addr(Keypair.generate().address())], [PAYMENT]), TIMEOUT)
    assert (await sim_of(server).info()).epoch == start + 1
