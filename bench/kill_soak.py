"""SIGKILL soak over the cycle: the driver actor, a scoring actor, a training worker or the job
process itself is killed at a random (seeded) moment, and the cycle must still end right.

Each run starts `jobs/cycle.py` on a fresh folder (its own local Ray), picks a victim and a
moment, and SIGKILLs the victim's process once it exists (Ray sets the process titles:
`ray::DriverActor`, `ray::MapWorker(MapBatches(ScoringActor))`, `ray::RayTrainWorker`). When the
job does not survive, it is started again on the kept folder (`cycle.fresh=false`), as a user
would resubmit it, up to `--reruns` times. Then the folder's network and the driver's ledger are
checked, the invariants of the chaos soak:

- one CreateModel; no failed SubmitData, CommitModel or CreateModel; every CommitModel revealed
  in exactly its epoch + 1;
- the ledger's done submissions, commits, reveals and claims equal the chain's transactions;
- the ledger's fees equal the fees the chain charged, and the chain's balance equals the faucet's
  coins less stake, fees and bonds, plus bonds returned and rewards, to the shannon;
- no ledger action left open, and the last attempt exited 0.

    .venv/bin/python bench/kill_soak.py --runs 8 --seed 1      # ~2.5 min a run on 2 cores
    .venv/bin/python bench/kill_soak.py --runs 1 --victim job  # one victim

It starts and kills whole local Ray clusters: run it alone on the machine (design.md: one Ray
cluster at a time). `tests/cluster/test_kill_soak.py` runs it small.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

VICTIMS = ("driver", "scorer", "trainer", "job")
# The process title each victim's Ray worker carries; the job is the cycle's own process.
TITLES = {"driver": "ray::DriverActor", "scorer": "ray::MapWorker(MapBatches(ScoringActor))",
          "trainer": "ray::RayTrainWorker"}
# How long after the victim appears the kill may come (s): the driver lives through the whole
# cycle, a training worker ~30 s, the scoring actors ~10 s; the job from its start.
WINDOWS = {"driver": (0.0, 45.0), "scorer": (0.0, 5.0), "trainer": (0.0, 20.0), "job": (5.0, 55.0)}
QUICK = ("training.max_steps=10", "training.eval_every=10", "training.checkpoint_every=10", "submit.max_fills=3")


@dataclass
class RunReport:
    run: int
    victim: str
    delay_s: float
    killed: bool = False
    killed_at_step: str = ""
    attempts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    seconds: float = 0.0
    figures: dict[str, int] = field(default_factory=dict)
    invariants: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.invariants) and all(self.invariants.values())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _title(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def _find(job: subprocess.Popen[bytes], victim: str) -> psutil.Process | None:
    if victim == "job":
        return psutil.Process(job.pid)
    try:
        family = psutil.Process(job.pid).children(recursive=True)  # this job's own Ray cluster
    except psutil.NoSuchProcess:
        return None
    return next((p for p in family if _title(p).startswith(TITLES[victim])), None)


def _last_step(log: Path) -> str:
    steps = [line.split("== step ")[1][:3] for line in log.read_text(errors="replace").splitlines()
             if "== step " in line]
    return steps[-1] if steps else "0/7"


def _kill_when_found(job: subprocess.Popen[bytes], report: RunReport, log: Path, stop: threading.Event) -> None:
    """Wait for the victim's process, then for the run's delay, then SIGKILL it (once)."""
    found_at = None
    while not stop.is_set() and job.poll() is None:
        target = _find(job, report.victim)
        if target is not None:
            found_at = found_at or time.monotonic()
            if time.monotonic() - found_at >= report.delay_s:
                try:
                    report.killed_at_step = _last_step(log)
                    target.send_signal(signal.SIGKILL)
                    report.killed = True
                except psutil.NoSuchProcess:
                    continue  # gone between finding and killing: find the next one
                return
        time.sleep(0.2)


def _reap_orphans() -> None:
    """A killed job's local Ray dies with it, except agents left orphaned (parent 1): stop them."""
    for proc in psutil.process_iter():
        if proc.pid != os.getpid() and _title(proc).startswith(("ray::DashboardAgent", "ray::RuntimeEnvAgent")):
            try:
                if proc.ppid() == 1:
                    proc.kill()
            except psutil.NoSuchProcess:
                pass


def _cycle(folder: Path, blob_port: int, fresh: bool, log: Path, extra: tuple[str, ...]) -> subprocess.Popen[bytes]:
    sets = [f"cycle.folder={folder}", f"cycle.fresh={str(fresh).lower()}",
            f"chain.sim.blob_url=http://127.0.0.1:{blob_port}", *QUICK, *extra]
    argv = [sys.executable, str(REPO / "jobs" / "cycle.py"), "--config", str(REPO / "configs" / "cycle.yaml")]
    for item in sets:
        argv += ["--set", item]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)


def check(folder: Path) -> tuple[dict[str, int], dict[str, bool]]:
    """(figures, invariants) of a cycle folder: its network's records against its driver's ledger."""
    from soma_ray.chain.config import WalletConfig
    from soma_ray.chain.wallet import load_keypair
    from soma_ray.driver.actions import (
        OPEN_STATUSES,
        ActionStatus,
        ClaimPayload,
        CommitPayload,
        RevealPayload,
        SubmitPayload,
    )
    from soma_ray.driver.state import DriverState
    from soma_ray.protocol.commitments import canonical_address

    me = canonical_address(load_keypair(WalletConfig(key_file=folder / "wallet.key")).address())
    with sqlite3.connect(folder / "sim" / "sim.db") as db:
        rows = db.execute("SELECT kind, ok, epoch, fee FROM txs WHERE sender = ?", (me,)).fetchall()
        faucets = int(db.execute("SELECT COUNT(*) FROM txs WHERE kind = 'Faucet'").fetchone()[0])
        (state_json,) = db.execute("SELECT state FROM system").fetchone()
        balance = int(db.execute("SELECT COALESCE(SUM(balance), 0) FROM coins WHERE owner = ?", (me,)).fetchone()[0])
    faucet_amount = int(json.loads(state_json)["faucet_amount"])
    ok = Counter(kind for kind, good, _, _ in rows if good)
    failed = Counter(kind for kind, good, _, _ in rows if not good)
    epochs = {kind: sorted(e for k, good, e, _ in rows if k == kind and good) for kind in ("CommitModel", "RevealModel")}
    state = DriverState(folder / "driver.db")
    try:
        ledger = state.ledger()
        done = {kind.__name__: len(state.actions(kind, (ActionStatus.DONE,)))
                for kind in (SubmitPayload, CommitPayload, RevealPayload, ClaimPayload)}
        open_actions = len(state.actions(statuses=OPEN_STATUSES))
    finally:
        state.close()
    expected = (faucets * faucet_amount - ledger.model_stake - ledger.fees - ledger.bonds_locked
                + ledger.bonds_returned + ledger.rewards)
    figures = {**{f"chain {k}": v for k, v in sorted(ok.items())}, "failed txs": sum(failed.values()),
               "ledger fees": ledger.fees, "chain fees": sum(fee for *_, fee in rows),
               "unexplained": balance - expected, "open actions": open_actions}
    invariants = {
        "one model created": ok["CreateModel"] == 1 and failed["CreateModel"] == 0,
        "no failed submission, commit or create": not (failed["SubmitData"] or failed["CommitModel"]),
        "every commit revealed in commit epoch + 1": [e + 1 for e in epochs["CommitModel"]] == epochs["RevealModel"],
        "ledger submissions = chain": done["SubmitPayload"] == ok["SubmitData"],
        "ledger commits and reveals = chain": done["CommitPayload"] == ok["CommitModel"]
        and done["RevealPayload"] == ok["RevealModel"],
        "ledger claims = chain": done["ClaimPayload"] == ok["ClaimRewards"],
        "ledger fees = chain fees": figures["ledger fees"] == figures["chain fees"],
        "balance explained to the shannon": figures["unexplained"] == 0,
        "no action left open": open_actions == 0,
    }
    return figures, invariants


def soak_run(root: Path, run: int, victim: str, delay_s: float, reruns: int = 2,
             extra: tuple[str, ...] = (), timeout_s: float = 900) -> RunReport:
    report = RunReport(run=run, victim=victim, delay_s=round(delay_s, 1))
    folder = root / f"run-{run}" / "cycle"
    folder.parent.mkdir(parents=True, exist_ok=True)
    log = folder.parent / "cycle.log"
    began = time.monotonic()
    port = _free_port()
    for attempt in range(reruns + 1):
        job = _cycle(folder, port, fresh=attempt == 0, log=log, extra=extra)
        stop = threading.Event()
        killer = None
        if attempt == 0:
            killer = threading.Thread(target=_kill_when_found, args=(job, report, log, stop), daemon=True)
            killer.start()
        try:
            code = job.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            job.kill()
            code = job.wait()
        stop.set()
        if killer is not None:
            killer.join()
        _reap_orphans()
        report.attempts, report.exit_codes = attempt + 1, [*report.exit_codes, code]
        if code == 0:
            break
    report.seconds = round(time.monotonic() - began, 1)
    report.figures, invariants = check(folder)
    report.invariants = {"the cycle finished": report.exit_codes[-1] == 0, **invariants}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--victim", choices=VICTIMS, help="always this victim (default: drawn per run)")
    parser.add_argument("--reruns", type=int, default=2, help="restarts of the job on its kept folder")
    parser.add_argument("--json", type=Path, help="also write the reports here")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    reports = []
    with tempfile.TemporaryDirectory(prefix="kill-soak-") as temporary:
        folder = args.keep or temporary
        for run in range(args.runs):
            victim = args.victim or VICTIMS[(run + args.seed) % len(VICTIMS)]  # each in turn; moments drawn
            report = soak_run(Path(folder), run, victim, rng.uniform(*WINDOWS[victim]), args.reruns)
            reports.append(report)
            broken = [name for name, held in report.invariants.items() if not held]
            print(f"run {run}: {victim} killed={report.killed} at step {report.killed_at_step or '-'} "
                  f"after {report.delay_s} s; attempts {report.attempts} {report.exit_codes}; "
                  f"{report.seconds} s; {'ok' if not broken else 'BROKEN: ' + ', '.join(broken)}", flush=True)
    summary = {
        "runs": len(reports), "kills": sum(r.killed for r in reports),
        "kills_by_victim": dict(Counter(r.victim for r in reports if r.killed)),
        "reruns": sum(r.attempts - 1 for r in reports),
        "invariants_checked": sum(len(r.invariants) for r in reports),
        "invariants_broken": sum(not held for r in reports for held in r.invariants.values()),
        "reports": [asdict(r) for r in reports],
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "reports"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if summary["invariants_broken"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
