"""Chain faults through the real client, no Ray: the driver over `SdkChain` (soma-sdk over gRPC)
against the served network, one fault aimed at one action (`FaultInjector.arm` just before it).

For each action (submit, create, commit, reveal, claim) and each fault (the answer lost after
executing, a reset before executing, a lock conflict, a slow answer, the epoch ending before or
after executing), the driver finds out what happened and finishes the action: the network's own
transaction table shows it executed exactly once, nothing is left open, and the ledger equals
the chain's balance and fees to the shannon (the fee of a transaction whose answer was lost
included).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from soma_ray.chain.errors import TargetExpired
from soma_ray.chain.served.config import FaultSettings
from soma_ray.chain.types import ModelStatus, TargetStatus
from soma_ray.chaos import (
    Wallet,
    chain_txs,
    check_exactly_once,
    check_ledger,
    check_nothing_open,
    open_wallet,
    tx_epochs,
    write_artifacts,
)
from soma_ray.driver.actions import ActionStatus, CommitPayload, SubmitPayload

FAULTS = ["drop_after", "reset_before", "lock_conflict", "delay", "epoch_before", "epoch_after"]
EPOCH_WHEN_DRAW = 5  # the sixth draw of a request decides before (< 0.5) or after (faults.py)


def _seed_for(before: bool) -> int:
    for seed in range(100):
        draws = random.Random(seed)
        values = [draws.random() for _ in range(EPOCH_WHEN_DRAW + 1)]
        if (values[EPOCH_WHEN_DRAW] < 0.5) == before:
            return seed
    raise AssertionError("no seed")


def fault(kind: str) -> FaultSettings:
    """One fault of `kind` on the next transaction."""
    if kind == "delay":
        return FaultSettings(seed=1, delay_s=0.5)
    if kind.startswith("epoch_"):
        return FaultSettings(seed=_seed_for(kind == "epoch_before"), epoch_change=1.0, max_faults=1)
    return FaultSettings(seed=1, max_faults=1, **{kind: 1.0})


@pytest.fixture
async def wallet(tmp_path: Path) -> AsyncIterator[Wallet]:
    opened = await open_wallet(tmp_path)
    yield opened
    await opened.close()


async def _exact(wallet: Wallet) -> None:
    await check_ledger(wallet)
    check_exactly_once(wallet)
    check_nothing_open(wallet)


def _injected(wallet: Wallet, kind: str) -> None:
    counts = wallet.server.faults.counts
    name = {"epoch_before": "epoch_change_before", "epoch_after": "epoch_change_after"}.get(kind, kind)
    assert counts[name] >= 1, counts


async def _submit(wallet: Wallet) -> Any:
    target = (await wallet.chain.all_targets(TargetStatus.OPEN))[0]
    embedding = np.ones(len(target.embedding), np.float32).tolist()
    return target, await wallet.driver.submit(target.id, b"chaos " * 50, target.model_ids[0], embedding, 0.0, 1.0)


@pytest.mark.parametrize("kind", FAULTS)
async def test_submit(wallet: Wallet, kind: str) -> None:
    await wallet.driver._keep_coins(await wallet.chain.balance(wallet.address))  # splits before the fault
    wallet.server.faults.arm(fault(kind))
    if kind == "epoch_before":  # the target expired while the submission was in flight
        with pytest.raises(TargetExpired):
            await _submit(wallet)
        assert chain_txs(wallet.sim, "SubmitData", wallet.address, ok=None) == 1
    else:
        target, tx = await _submit(wallet)
        assert tx is not None
        action = wallet.driver.state.get(f"submit:{target.id}", SubmitPayload)
        assert action is not None and action.status == ActionStatus.DONE
        assert action.payload.fill_epoch == (await wallet.sim.get_target(target.id)).fill_epoch
        assert chain_txs(wallet.sim, "SubmitData", wallet.address, ok=None) == 1
    _injected(wallet, kind)
    await _exact(wallet)


@pytest.mark.parametrize("kind", FAULTS)
async def test_create_and_commit(wallet: Wallet, tmp_path: Path, kind: str) -> None:
    manifest = write_artifacts(tmp_path / "artifacts", wallet.sim, 0)
    wallet.server.faults.arm(fault(kind))
    model_id = await wallet.driver.ensure_model()  # the fault hits CreateModel
    _injected(wallet, kind)
    assert [m.model_id for m in await wallet.sim.models_owned(wallet.address)] == [model_id]
    await _exact(wallet)

    wallet.server.faults.arm(fault(kind))  # ... and again the commit
    result = await wallet.driver.commit(str(manifest))
    assert result.status == ActionStatus.DONE
    commit = wallet.driver.state.get(result.key, CommitPayload)
    assert commit is not None
    assert [commit.payload.commit_epoch] == tx_epochs(wallet.sim, "CommitModel", wallet.address)
    assert (await wallet.sim.get_model(model_id)).status == ModelStatus.PENDING
    assert chain_txs(wallet.sim, "CreateModel", wallet.address, ok=None) == 1
    assert chain_txs(wallet.sim, "CommitModel", wallet.address, ok=None) == 1
    await _exact(wallet)

    if (await wallet.sim.info()).epoch == commit.payload.commit_epoch:  # (unless it ended after the commit)
        await wallet.chain.advance_epoch()
    assert (await wallet.driver.tick()).revealed == [model_id]  # in commit epoch + 1, the chain's
    assert tx_epochs(wallet.sim, "RevealModel", wallet.address) == [commit.payload.commit_epoch + 1]


@pytest.mark.parametrize("kind", [k for k in FAULTS if k != "epoch_before"])
async def test_reveal(wallet: Wallet, tmp_path: Path, kind: str) -> None:
    """(An epoch ending before the reveal executes makes it late whatever the driver does: the
    driver reveals first thing in the reveal epoch, and the soak's epochs last longer than that.)"""
    manifest = write_artifacts(tmp_path / "artifacts", wallet.sim, 0)
    result = await wallet.driver.commit(str(manifest))
    await wallet.chain.advance_epoch()
    wallet.server.faults.arm(fault(kind))
    assert (await wallet.driver.tick()).revealed in ([result.model_id], [])
    _injected(wallet, kind)
    assert (await wallet.sim.get_model(result.model_id)).status == ModelStatus.ACTIVE
    commit = wallet.driver.state.get(result.key, CommitPayload)
    assert commit is not None and commit.payload.commit_epoch is not None
    assert tx_epochs(wallet.sim, "RevealModel", wallet.address) == [commit.payload.commit_epoch + 1]
    assert chain_txs(wallet.sim, "RevealModel", wallet.address, ok=None) == 1
    await _exact(wallet)


@pytest.mark.parametrize("kind", FAULTS)
async def test_claim(wallet: Wallet, kind: str) -> None:
    target, _ = await _submit(wallet)
    for _ in range(2):
        await wallet.chain.advance_epoch()
    wallet.server.faults.arm(fault(kind))
    await wallet.driver.tick()
    _injected(wallet, kind)
    assert target.id not in {t.id for t in await wallet.sim.all_targets()}  # claimed: deleted
    assert chain_txs(wallet.sim, "ClaimRewards", wallet.address, ok=None) == 1
    assert wallet.driver.ledger().claims == 1
    await _exact(wallet)
