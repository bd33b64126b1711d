"""Chain faults through the real client: a driver over `SdkChain` (soma-sdk over gRPC) against the
served network with its fault knobs on, and the checks that it did every action exactly once.

`open_wallet` serves a fresh small network in-process on free ports (`chain.localnet.faults`
set), funds a wallet from its faucet and starts a `Driver` on it. `check_exactly_once` and
`check_ledger` compare the driver's ledger with the network's own transaction table (the ground
truth the client never sees): no action executed twice, and the ledger equal to the chain's
balance and fees to the shannon. `soak` (`bench/chaos.py`) runs two submitter jobs and a training
commit round over many epochs with every knob on and checks the invariants after every epoch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from soma_sdk import Keypair

from soma_ray.chain.errors import ChainError, TransactionFailed
from soma_ray.chain.sdk import SdkChain
from soma_ray.chain.served import LocalnetServer, LocalnetSettings
from soma_ray.chain.served.config import FaultSettings
from soma_ray.chain.sim import SimChain
from soma_ray.chain.types import ModelStatus, Target, TargetStatus
from soma_ray.driver.actions import OPEN_STATUSES, ActionStatus, CommitPayload, RevealPayload
from soma_ray.driver.artifacts import Artifacts
from soma_ray.driver.driver import Driver
from soma_ray.driver.settings import DriverSettings
from soma_ray.errors import SomaRayError
from soma_ray.protocol.commitments import canonical_address, commitment, embedding_commitment
from soma_ray.protocol.windows import reveal_epoch
from soma_ray.storage import LocalBlobStore

log = logging.getLogger("soma_ray.chaos")

FREE_PORTS = {"rpc_port": 0, "faucet_port": 0, "scoring_port": 0, "admin_port": 0, "blob_port": 0}
# Transaction kinds an action sends once at most (merges and splits may repeat by design).
ONCE_KINDS = {"submit": "SubmitData", "create_model": "CreateModel", "commit": "CommitModel",
              "reveal": "RevealModel", "claim": "ClaimRewards"}


class InvariantBroken(SomaRayError):
    """The driver's ledger and the chain disagree, or an action executed twice."""


@dataclass
class Wallet:
    """A served network, a funded wallet on it and its driver (through soma-sdk)."""

    server: LocalnetServer
    chain: SdkChain
    signer: Keypair
    driver: Driver

    @property
    def sim(self) -> SimChain:
        assert isinstance(self.server.sim, SimChain)
        return self.server.sim

    @property
    def address(self) -> str:
        return canonical_address(self.signer.address())

    async def close(self) -> None:
        self.driver.state.close()
        await self.chain.close()
        await self.server.stop()


def served_settings(folder: Path, faults: FaultSettings | None = None, **genesis: Any) -> LocalnetSettings:
    """A tiny network (width-16 models, 10 targets an epoch) on free ports."""
    sim: dict[str, Any] = {"path": str(folder / "localnet"), "genesis_models": 4, "genesis_targets": 10,
                           "params": {"target_initial_targets_per_epoch": 10}}
    sim.update(genesis)
    return LocalnetSettings.model_validate({
        **FREE_PORTS, "sim": sim, "faults": (faults or FaultSettings()).model_dump(),
    })


async def open_wallet(folder: Path, faults: FaultSettings | None = None, *, coins: int = 3,
                      **driver: Any) -> Wallet:
    """Serve, fund (`coins` faucet coins of 2 SOMA) and start a driver; the knobs are armed only
    after the faucet, so funding is never faulty."""
    server = LocalnetServer(served_settings(folder))
    await server.start()
    try:
        urls = server.urls
        chain = await SdkChain.connect(rpc_url=urls.rpc_url, faucet_url=urls.faucet_url, admin_url=urls.admin_url)
        signer = Keypair.generate()
        for _ in range(coins):
            await chain.faucet(signer.address())
        sim = server.sim
        assert isinstance(sim, SimChain)
        store = LocalBlobStore(sim.settings.blob_dir, urls.blob_url)
        settings = DriverSettings(state_path=folder / "driver.db", allow_network=True, **driver)
        wallet = Wallet(server, chain, signer, Driver(chain, signer, store, settings, "localnet"))
        await wallet.driver.start()
        if faults is not None:
            server.faults.arm(faults)
        return wallet
    except BaseException:
        await server.stop()
        raise


# -- the ground truth: the network's own transaction table ------------------------------------


def chain_txs(sim: SimChain, kind: str, sender: str, ok: bool | None = True) -> int:
    """How many transactions of `kind` the network executed from `sender`."""
    query, args = "SELECT COUNT(*) FROM txs WHERE kind = ? AND sender = ?", [kind, sender]
    if ok is not None:
        query += " AND ok = ?"
        args.append(str(int(ok)))
    with sqlite3.connect(sim.settings.db_path) as conn:
        return int(conn.execute(query, args).fetchone()[0])


def fees_paid(sim: SimChain, sender: str) -> int:
    with sqlite3.connect(sim.settings.db_path) as conn:
        return int(conn.execute("SELECT COALESCE(SUM(fee), 0) FROM txs WHERE sender = ?", (sender,)).fetchone()[0])


def tx_epochs(sim: SimChain, kind: str, sender: str) -> list[int]:
    with sqlite3.connect(sim.settings.db_path) as conn:
        rows = conn.execute("SELECT epoch FROM txs WHERE kind = ? AND sender = ? AND ok = 1 ORDER BY seq",
                            (kind, sender))
        return [int(r[0]) for r in rows]


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise InvariantBroken(what)


async def check_ledger(wallet: Wallet) -> int:
    """The ledger equals the chain to the shannon: the balance it explains is the chain's, and the
    fees it recorded are what the network charged (answers lost or not). Returns checks made."""
    ledger = wallet.driver.ledger()
    balance = await wallet.sim.balance(wallet.address)
    _require(ledger.expected_balance == balance,
             f"ledger explains {ledger.expected_balance:,} shannons, the chain holds {balance:,} "
             f"(off by {balance - ledger.expected_balance:,})")
    charged = fees_paid(wallet.sim, wallet.address)
    _require(ledger.fees == charged, f"ledger fees {ledger.fees:,}, network charged {charged:,}")
    return 2


def check_exactly_once(wallet: Wallet) -> int:
    """No action executed twice: per ledger key kind, the successful transactions on the network
    equal the ledger's done actions, and no target, model commit or reveal got two. Returns checks made."""
    me, sim, state = wallet.address, wallet.sim, wallet.driver.state
    checks = 0
    for kind, tx_kind in ONCE_KINDS.items():
        done = [a for a in state.actions() if a.kind == kind and a.status == ActionStatus.DONE]
        landed = chain_txs(sim, tx_kind, me, ok=True)
        _require(landed == len(done), f"{tx_kind}: {landed} landed on the network, the ledger has {len(done)} done")
        checks += 1
    with sqlite3.connect(sim.settings.db_path) as conn:
        (twice,) = conn.execute(
            "SELECT COUNT(*) FROM (SELECT digest FROM txs WHERE sender = ? GROUP BY digest HAVING COUNT(*) > 1)", (me,)
        ).fetchone()
    _require(twice == 0, f"{twice} transaction digests executed twice")
    return checks + 1


def check_reveals(wallet: Wallet, epoch: int, final: bool = False) -> int:
    """Every commit revealed in exactly commit epoch + 1 (checked once that epoch has passed)."""
    sim, me, state = wallet.sim, wallet.address, wallet.driver.state
    reveal_epochs = tx_epochs(sim, "RevealModel", me)
    checks = 0
    for commit in state.actions(CommitPayload, (ActionStatus.DONE,)):
        ce = commit.payload.commit_epoch
        _require(ce is not None, f"{commit.key}: done without a commit epoch")
        assert ce is not None
        if epoch <= reveal_epoch(ce) and not final:
            continue
        reveal = state.get(f"reveal:{commit.payload.model_id}:{ce}", RevealPayload)
        _require(reveal is not None and reveal.status == ActionStatus.DONE, f"{commit.key}: never revealed")
        _require(reveal_epoch(ce) in reveal_epochs, f"{commit.key}: no reveal in epoch {reveal_epoch(ce)}")
        checks += 1
    commits = tx_epochs(sim, "CommitModel", me)
    _require(len(reveal_epochs) <= len(commits) and all(r - 1 in commits for r in reveal_epochs),
             f"reveals in epochs {reveal_epochs} do not follow the commits of epochs {commits}")
    return checks + 1


def check_nothing_open(wallet: Wallet) -> int:
    open_ = [a.key for a in wallet.driver.state.actions(statuses=(ActionStatus.INTENDED,))]
    _require(not open_, f"actions left intended: {open_}")
    return 1


# -- the soak ----------------------------------------------------------------------------------


@dataclass
class SoakReport:
    seed: int
    epochs: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    uncertain: int = 0
    reconciled: int = 0
    landed_unanswered: int = 0
    retried: int = 0
    invariants_checked: int = 0
    submissions: int = 0
    submit_refused: dict[str, int] = field(default_factory=dict)
    claims: int = 0
    commits: int = 0
    reveals: int = 0
    transactions: int = 0
    wall_s: float = 0.0

    @property
    def faults_injected(self) -> int:
        return sum(self.faults.values())

    def as_json(self) -> str:
        data = dict(self.__dict__)
        data["faults_injected"] = self.faults_injected
        return json.dumps(data, indent=2, sort_keys=True)


def soak_faults(seed: int, max_faults: int | None = None) -> FaultSettings:
    """Every knob on. Epochs last at least 6 transactions (a real one lasts a day)."""
    return FaultSettings(seed=seed, reset_before=0.08, drop_after=0.1, lock_conflict=0.04, delay_s=0.05,
                         delay_probability=0.1, epoch_change=0.08, epoch_min_txs=6, max_faults=max_faults)


async def _submitter(name: str, wallet: Wallet, stop: asyncio.Event, rng: random.Random,
                     report: SoakReport, per_round: int) -> None:
    """A submitter job: hands the driver hits on open targets (unscored data the chain takes:
    nothing verifies the score, §4.2)."""
    driver = wallet.driver
    refused: Counter[str] = Counter()
    targets = [t for t in await wallet.chain.all_targets(TargetStatus.OPEN)]
    rng.shuffle(targets)
    for target in targets[:per_round]:
        if stop.is_set():
            break
        data = f"{name} {target.id} {rng.random()}".encode() * 8
        try:
            tx = await driver.submit(target.id, data, target.model_ids[0], _embedding(target), 0.0, 1.0)
        except TransactionFailed as err:
            refused[err.code] += 1
            continue
        if tx is not None:
            report.submissions += 1
    for code, n in refused.items():
        report.submit_refused[code] = report.submit_refused.get(code, 0) + n


def _embedding(target: Target) -> list[float]:
    return np.ones(len(target.embedding), np.float32).tolist()


async def soak(folder: Path, *, seed: int, faults: int, epochs: int, per_round: int = 4,
               artifacts: Path | None = None) -> SoakReport:
    """Seeded chaos over `epochs` epochs (at least) or until `faults` faults were injected: two
    submitter jobs and a training round (create, commit, reveal in commit epoch + 1, an update
    commit later) through one driver over soma-sdk, with every fault knob on. The invariants are
    checked after every epoch and at the end; `InvariantBroken` says which failed."""
    started = time.monotonic()
    report = SoakReport(seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    wallet = await open_wallet(folder, soak_faults(seed), coins=8, concurrent_submissions=4, send_attempts=10)
    rng = random.Random(seed)
    try:
        manifests = artifacts or folder / "artifacts"
        first_epoch = (await wallet.sim.info()).epoch
        commits = 0
        rounds = 0
        while True:
            epoch = (await wallet.sim.info()).epoch
            if epoch - first_epoch >= epochs and sum(wallet.server.faults.counts.values()) >= faults:
                break
            rounds += 1
            await wallet.driver.tick()  # reveals first, then claims
            stop = asyncio.Event()
            jobs = [_submitter(f"job{i}", wallet, stop, random.Random(rng.random()), report, per_round)
                    for i in (1, 2)]
            if commits < 2 and (rounds == 1 or rounds == 4) and await _can_commit(wallet):
                jobs.append(_train_round(wallet, manifests, commits))
                commits += 1
            await asyncio.gather(*jobs)
            await wallet.driver.settle_uncertain()
            await wallet.driver.tick()
            report.invariants_checked += await _check_all(wallet, epoch)
            await wallet.chain.advance_epoch()  # the clock (the knob ends epochs too)
            wallet.server.faults.epoch_changed()
            if rounds > 20 * max(epochs, 1) + faults:
                raise InvariantBroken("the soak does not progress")
        # Wind down with the knobs off: every claim due and every reveal due is made.
        wallet.server.faults.arm(FaultSettings())
        for _ in range(3):
            await wallet.driver.tick()
            await wallet.chain.advance_epoch()
        await wallet.driver.tick()
        final = (await wallet.sim.info()).epoch
        report.invariants_checked += await _check_all(wallet, final, final=True)
        report.epochs = final - first_epoch
        faults_seen = wallet.server.faults.counts
        report.faults = dict(sorted(faults_seen.items()))
        counts = wallet.driver.counts
        report.uncertain, report.reconciled, report.retried = counts.uncertain, counts.reconciled, counts.retried
        report.landed_unanswered = counts.landed
        me = wallet.address
        report.claims = chain_txs(wallet.sim, "ClaimRewards", me)
        report.commits = chain_txs(wallet.sim, "CommitModel", me)
        report.reveals = chain_txs(wallet.sim, "RevealModel", me)
        with sqlite3.connect(wallet.sim.settings.db_path) as conn:
            report.transactions = int(conn.execute("SELECT COUNT(*) FROM txs WHERE sender = ?", (me,)).fetchone()[0])
    finally:
        await wallet.close()
    report.wall_s = round(time.monotonic() - started, 1)
    return report


async def _can_commit(wallet: Wallet) -> bool:
    model_id = wallet.driver.state.meta("model_id")
    if model_id is None:
        return True
    return (await wallet.chain.get_model(model_id)).status == ModelStatus.ACTIVE


async def _train_round(wallet: Wallet, folder: Path, n: int) -> None:
    """A training round's end: export artifacts, commit them through the driver (the reveal
    follows in the next epoch, on the driver's tick)."""
    manifest = await asyncio.to_thread(write_artifacts, folder / f"round{n}", wallet.sim, n)
    try:
        await wallet.driver.commit(str(manifest))
    except ChainError as err:
        log.warning("commit round %d: %s", n, err)


def write_artifacts(folder: Path, sim: SimChain, seed: int) -> Path:
    """An artifacts folder in the export format (`training/export.py`) with seeded bytes for
    weights: the chain checks commitments, not weights (nothing is scored in the soak)."""
    rng = np.random.default_rng(seed)
    weights = rng.bytes(4096)
    embedding = rng.normal(size=sim.settings.architecture.embedding_dim).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights.safetensors").write_bytes(weights)
    artifacts = Artifacts(
        run="chaos", step=seed, architecture=sim.settings.architecture.model_dump(), heldout_loss=5.0,
        heldout_samples=1, embedding=[float(x) for x in embedding], embedding_commitment=embedding_commitment(embedding),
        weights_file="weights.safetensors", weights_size=len(weights), weights_blake2b=commitment(weights),
        checkpoint="none", created_at=0.0,
    )
    (folder / "manifest.json").write_text(json.dumps(dataclasses.asdict(artifacts)))
    return folder / "manifest.json"


async def _check_all(wallet: Wallet, epoch: int, final: bool = False) -> int:
    checks = await check_ledger(wallet)
    checks += check_exactly_once(wallet)
    checks += check_reveals(wallet, epoch, final)
    checks += check_nothing_open(wallet)
    waiting = [a.key for a in wallet.driver.state.actions(statuses=OPEN_STATUSES)
               if a.status == ActionStatus.WAITING]
    if final:
        _require(not waiting, f"claims still waiting at the end: {waiting}")
        checks += 1
    return checks


__all__ = [
    "InvariantBroken",
    "SoakReport",
    "Wallet",
    "chain_txs",
    "check_exactly_once",
    "check_ledger",
    "check_nothing_open",
    "check_reveals",
    "fees_paid",
    "open_wallet",
    "served_settings",
    "soak",
    "soak_faults",
    "tx_epochs",
]
