"""Reconciliation without Ray: the driver stops at a failpoint (an exception here, a process exit
in tests/driver/test_faults.py), a new driver on the same ledger settles what was in flight from
the chain, and the retried call sends nothing twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from soma_ray.chain.sim import SimChain
from soma_ray.chain.types import ModelStatus, Target, TargetStatus
from soma_ray.driver.actions import ActionStatus, CommitPayload, SubmitPayload
from soma_ray.driver.driver import Driver
from soma_ray.protocol.commitments import canonical_address
from tests.driver.kit import chain_txs, make_driver, write_artifacts

FundFn = Any


class Crash(Exception):
    pass


@pytest.fixture
def crash_at(monkeypatch: pytest.MonkeyPatch) -> Any:
    def arm(point: str) -> None:
        fired: set[str] = set()

        def failpoint(self: Driver, name: str) -> None:
            if name == point and name not in fired:
                fired.add(name)
                raise Crash(name)

        monkeypatch.setattr(Driver, "_failpoint", failpoint)

    return arm


def _tx_epochs(sim: SimChain, kind: str, sender: str) -> list[int]:
    with sqlite3.connect(sim.settings.path / "sim.db") as conn:
        rows = conn.execute("SELECT epoch FROM txs WHERE kind = ? AND sender = ? AND ok = 1", (kind, sender))
        return [int(r[0]) for r in rows]


@pytest.mark.parametrize("point", ["commit:recorded", "commit:sent", "reveal:due"])
async def test_a_stopped_driver_commits_once_and_reveals_in_the_next_epoch(
    served_sim: Any, fund: FundFn, tmp_path: Path, crash_at: Any, point: str
) -> None:
    sim, server = served_sim
    signer = await fund(2)
    me = canonical_address(signer.address())
    crash_at(point)
    driver = make_driver(sim, server.url, signer, tmp_path)
    await driver.start()
    manifest = write_artifacts(tmp_path / "artifacts", sim)
    if point == "reveal:due":
        await driver.commit(str(manifest))
        await sim.advance_epoch()
        with pytest.raises(Crash):
            await driver.tick()
    else:
        with pytest.raises(Crash):
            await driver.commit(str(manifest))

    restarted = make_driver(sim, server.url, signer, tmp_path)
    await restarted.start()  # reconciles, then acts on what is due
    again = await restarted.commit(str(manifest))  # the call Ray would retry
    assert again.status == ActionStatus.DONE
    commit = restarted.state.get(again.key, CommitPayload)
    assert commit is not None and commit.payload.commit_epoch == _tx_epochs(sim, "CommitModel", me)[0]
    if point != "reveal:due":
        assert (await sim.get_model(again.model_id)).status == ModelStatus.PENDING
        await sim.advance_epoch()
        assert (await restarted.tick()).revealed == [again.model_id]
    assert (await sim.get_model(again.model_id)).status == ModelStatus.ACTIVE
    assert _tx_epochs(sim, "RevealModel", me) == [commit.payload.commit_epoch + 1]
    for kind in ("CreateModel", "CommitModel", "RevealModel"):
        assert chain_txs(sim, kind, me, ok=None) == 1, kind
    status = await restarted.status()
    assert status.model_status == ModelStatus.ACTIVE and status.pending == [] and status.next_deadline is None


async def _submit(driver: Driver, target: Target) -> Any:
    embedding = np.ones(len(target.embedding), np.float32).tolist()
    return await driver.submit(target.id, b"a sample " * 40, target.model_ids[0], embedding, 0.0, 1.0)


@pytest.mark.parametrize("point", ["submit:recorded", "submit:sent"])
async def test_a_stopped_driver_submits_once(
    served_sim: Any, fund: FundFn, tmp_path: Path, crash_at: Any, point: str
) -> None:
    sim, server = served_sim
    signer = await fund(2)
    me = canonical_address(signer.address())
    crash_at(point)
    driver = make_driver(sim, server.url, signer, tmp_path)
    await driver.start()
    target = (await sim.all_targets(TargetStatus.OPEN))[0]
    with pytest.raises(Crash):
        await _submit(driver, target)

    restarted = make_driver(sim, server.url, signer, tmp_path)
    await restarted.start()
    retried = await _submit(restarted, target)
    assert (retried is not None) == (point == "submit:recorded")  # sent again only if it never landed
    assert await _submit(restarted, target) is None
    assert chain_txs(sim, "SubmitData", me, ok=None) == 1
    submitted = restarted.state.get(f"submit:{target.id}", SubmitPayload)
    assert submitted is not None and submitted.status == ActionStatus.DONE
    assert submitted.payload.fill_epoch == (await sim.info()).epoch
    assert restarted.ledger().submissions == 1
