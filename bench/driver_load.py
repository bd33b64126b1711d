"""The driver actor under load: concurrent submitter clients sending hits, on a real local Ray.

What a busy wallet sees: several submitter jobs (here, client threads, each with its own handle
to the wallet's one driver actor, found by name as a job finds it) find hits for the same open
targets at the same time. Every epoch the clients send `--hits` hits in all, spread at random
(seeded) over the epoch's open targets, so many hits name a target someone already filled. The
driver must submit once per target, answer `None` for the rest, and keep its SQLite ledger whole
under the contention. Each call's latency is timed from the client.

Checked at the end (exit status 1 if any fails):
- no double submission: SubmitData transactions on chain (ok or failed) = calls answered with a
  transaction = targets whose submitter is this wallet;
- the ledger: `PRAGMA integrity_check` is ok, its done submissions equal the chain's, no action
  is left open, and its fees equal the fees the chain charged;
- the balance: the chain's balance = start − bonds locked − fees (nothing claimed here).

    .venv/bin/python bench/driver_load.py                         # 8 clients, 1,000 hits/epoch, 3 epochs
    .venv/bin/python bench/driver_load.py --json load.json         # also write the figures

`tests/driver/test_load.py` runs `run_load` small on the test session's Ray.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # design.md: no auth token left behind
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@dataclass
class LoadReport:
    clients: int
    epochs: int
    hits_per_epoch: int
    targets_per_epoch: int
    data_bytes: int
    hits: int = 0
    submitted: int = 0  # calls answered with a transaction
    answered_none: int = 0  # calls answered "already ours"
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    hits_per_s: float = 0.0
    submissions_per_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50/p99/max over every call
    submit_latency_ms: dict[str, float] = field(default_factory=dict)  # calls that sent a transaction
    chain_submits: int = 0
    chain_failed_submits: int = 0
    targets_ours: int = 0  # filled by this wallet and not yet claimed (a claim deletes the target)
    claims: int = 0
    ledger_done_submits: int = 0
    ledger_open_actions: int = 0
    ledger_integrity: str = ""
    ledger_fees: int = 0
    chain_fees: int = 0
    unexplained: int = 0
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(self.checks.values()) and not self.errors


def _percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ms = np.asarray(samples) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 1), "p99": round(float(np.percentile(ms, 99)), 1),
            "max": round(float(ms.max()), 1), "n": len(samples)}


def _settled_ledger(handle: Any, quiet_s: float = 1.0, timeout_s: float = 60.0) -> Any:
    """The driver's ledger once it has stopped changing for `quiet_s` (the epoch watcher's claims)."""
    import ray

    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        ledger = ray.get(handle.ledger.remote())
        if ledger == last:
            return ledger
        last = ledger
        time.sleep(quiet_s)
    return last


def _sim_settings(root: Path, blob_url: str, targets: int) -> Any:
    from soma_ray.chain.sim import SimSettings

    return SimSettings.model_validate({
        "path": root / "sim", "blob_url": blob_url, "genesis_models": 4, "genesis_targets": targets,
        "params": {"target_initial_targets_per_epoch": targets},
    })


def _chain_figures(sim: Any, address: str) -> tuple[int, int, int, int]:
    """(ok SubmitData txs, failed SubmitData txs, fees charged to `address`, targets it filled)."""
    with sqlite3.connect(sim.settings.db_path) as db:
        ok, failed = (int(db.execute("SELECT COUNT(*) FROM txs WHERE kind = 'SubmitData' AND sender = ? AND ok = ?",
                                     (address, flag)).fetchone()[0]) for flag in (1, 0))
        fees = int(db.execute("SELECT COALESCE(SUM(fee), 0) FROM txs WHERE sender = ?", (address,)).fetchone()[0])
        ours = int(db.execute("SELECT COUNT(*) FROM targets WHERE submitter = ?", (address,)).fetchone()[0])
    return ok, failed, fees, ours


def run_load(
    root: Path, *, clients: int = 8, hits_per_epoch: int = 1000, epochs: int = 3, targets_per_epoch: int = 100,
    data_bytes: int = 1024, seed: int = 0, coins: int = 4,
) -> LoadReport:
    """One load run in `root` on the Ray this process has joined (or a new local one)."""
    import ray
    from pydantic import SecretStr
    from soma_sdk import Keypair

    from soma_ray.chain.config import ChainConfig, WalletConfig
    from soma_ray.chain.sim import SimChain
    from soma_ray.config.jobs import RunConfig
    from soma_ray.driver.actions import OPEN_STATUSES, ActionStatus, SubmitPayload
    from soma_ray.driver.actor import NAMESPACE, actor_name, driver_handle, stop_driver
    from soma_ray.driver.state import DriverState
    from soma_ray.protocol.commitments import canonical_address
    from soma_ray.runtime import ensure_ray
    from soma_ray.storage import BlobHTTPServer
    from soma_ray.storage.config import LocalStorageConfig, StorageConfig

    report = LoadReport(clients, epochs, hits_per_epoch, targets_per_epoch, data_bytes)
    blobs = root / "sim" / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    server = BlobHTTPServer(blobs).start()
    sim = SimChain(_sim_settings(root, server.url, targets_per_epoch))
    keypair = Keypair.generate()
    for _ in range(coins):
        asyncio.run(sim.faucet(keypair.address()))
    address = canonical_address(keypair.address())
    start_balance = asyncio.run(sim.balance(address))
    config = RunConfig(
        chain=ChainConfig(network="sim", sim=sim.settings),
        storage=StorageConfig(kind="local", local=LocalStorageConfig(root=blobs, base_url=server.url)),
        wallet=WalletConfig(secret_key=SecretStr(keypair.to_secret_key())),
        driver={"state_path": root / "driver.db", "concurrent_submissions": clients},
    )
    ensure_ray(log_to_driver=False)
    lock = threading.Lock()
    latencies: list[float] = []
    submit_latencies: list[float] = []
    try:
        driver_handle(config)
        name = actor_name(config)
        elapsed = 0.0
        for epoch_index in range(epochs):
            targets = asyncio.run(sim.all_targets("open"))
            rng = random.Random(seed * 1000 + epoch_index)
            plan = [rng.choice(targets) for _ in range(hits_per_epoch)]
            shares = [plan[i::clients] for i in range(clients)]

            def client(index: int, hits: list[Any], epoch_index: int = epoch_index) -> None:
                handle = ray.get_actor(name, namespace=NAMESPACE)  # as a submitter job finds it
                for k, target in enumerate(hits):
                    body = f"epoch {epoch_index} client {index} hit {k} ".encode()
                    data = (body * (data_bytes // len(body) + 1))[:data_bytes]
                    embedding = [1.0] * len(target.embedding)
                    began = time.perf_counter()
                    try:
                        tx = ray.get(handle.submit.remote(target.id, data, target.model_ids[0], embedding, 0.0, 1.0))
                    except Exception as err:  # noqa: BLE001 - counted and reported
                        with lock:
                            report.errors.append(f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
                        continue
                    took = time.perf_counter() - began
                    with lock:
                        latencies.append(took)
                        if tx is None:
                            report.answered_none += 1
                        else:
                            report.submitted += 1
                            submit_latencies.append(took)

            threads = [threading.Thread(target=client, args=(i, share)) for i, share in enumerate(shares)]
            began = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed += time.perf_counter() - began
            report.hits += hits_per_epoch
            asyncio.run(sim.advance_epoch())
        report.seconds = round(elapsed, 2)
        # Let the epoch watcher finish what the last epoch change made due (claims), then read
        # the ledger's totals as the driver reports them.
        ledger = _settled_ledger(ray.get_actor(name, namespace=NAMESPACE))
    finally:
        stop_driver(config)
        server.stop()
    report.hits_per_s = round(report.hits / report.seconds, 1) if report.seconds else 0.0
    report.submissions_per_s = round(report.submitted / report.seconds, 1) if report.seconds else 0.0
    report.latency_ms, report.submit_latency_ms = _percentiles(latencies), _percentiles(submit_latencies)

    report.chain_submits, report.chain_failed_submits, report.chain_fees, report.targets_ours = _chain_figures(
        sim, address)
    state = DriverState(root / "driver.db")
    try:
        report.ledger_integrity = str(state._conn.execute("PRAGMA integrity_check").fetchone()[0])
        done = state.actions(SubmitPayload, (ActionStatus.DONE,))
        report.ledger_done_submits = len(done)
        report.ledger_open_actions = len(state.actions(statuses=OPEN_STATUSES))
        report.ledger_fees = sum(a.fee for a in state.actions())
    finally:
        state.close()
    report.claims = ledger.claims
    expected = (start_balance - ledger.model_stake - ledger.fees - ledger.bonds_locked + ledger.bonds_returned
                + ledger.rewards)
    report.unexplained = asyncio.run(sim.balance(address)) - expected
    report.checks = {
        # One submission per ledger key `submit:<target>`, and the chain executed exactly the
        # submissions the callers were told about, none failed (a second one would: TargetNotOpen).
        "no double submission": report.chain_submits == report.submitted == report.ledger_done_submits
        and report.chain_failed_submits == 0 and report.targets_ours + report.claims >= report.chain_submits,
        "every hit answered": report.submitted + report.answered_none == report.hits,
        "ledger integrity ok": report.ledger_integrity == "ok",
        "ledger submissions = chain": report.ledger_done_submits == report.chain_submits,
        "no action left open": report.ledger_open_actions == 0,
        "ledger fees = chain fees": report.ledger_fees == report.chain_fees,
        "balance explained to the shannon": report.unexplained == 0,
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--hits", type=int, default=1000, help="hits per epoch, all clients together")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--targets", type=int, default=100, help="open targets per epoch")
    parser.add_argument("--data-bytes", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    import ray

    ray.init(include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="driver-load-") as folder:
            report = run_load(Path(folder), clients=args.clients, hits_per_epoch=args.hits, epochs=args.epochs,
                              targets_per_epoch=args.targets, data_bytes=args.data_bytes, seed=args.seed)
    finally:
        ray.shutdown()
    doc = {**asdict(report), "ok": report.ok}
    print(json.dumps(doc, indent=2))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
