"""The main job on a fresh simulated network in a tmp folder, in-process with the session's Ray:
the model is active in its reveal epoch, targets list it, fills land and are claimed, the ledger
adds up to the chain's balance (and its fees to the chain's own fee records), and no driver
actor is left behind."""

from __future__ import annotations

import io
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import base58
import pytest
from rich.console import Console

from soma_ray.config import ConfigError, CycleConfig, load_config, load_job_config
from soma_ray.cycle import MARKER, CycleError, prepare_folder, run_cycle

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "configs" / "cycle.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cycle_config(root: Path, *overrides: str) -> CycleConfig:
    """The shipped recipe, in `root`, with a shorter training run and a free blob port."""
    return load_config(CycleConfig, RECIPE, [
        f"cycle.folder={root / 'cycle'}", f"chain.sim.blob_url=http://127.0.0.1:{free_port()}",
        f"data.path={REPO / 'soma_ray'}", "training.max_steps=10", "training.eval_every=10",
        "training.checkpoint_every=10", "submit.max_fills=3", *overrides,
    ], env={})


def sim_txs(sim_db: Path, sender: str) -> dict[str, Any]:
    with sqlite3.connect(sim_db) as conn:
        rows = conn.execute("SELECT kind, ok, fee FROM txs WHERE sender = ?", (sender,)).fetchall()
    return {
        "fees": sum(fee for _, _, fee in rows),
        "ok": {kind: sum(1 for k, ok, _ in rows if k == kind and ok) for kind, _, _ in rows},
    }


def files_holding(secret: str, roots: list[Path], skip: tuple[Path, ...] = ()) -> tuple[int, list[str]]:
    """(files scanned, files holding `secret`) under `roots`."""
    scanned, hits = 0, []
    for root in roots:
        for path in root.rglob("*"):
            if path in skip or not path.is_file():
                continue
            scanned += 1
            if secret.encode() in path.read_bytes():
                hits.append(str(path))
    return scanned, hits


def ray_session_logs(ray: Any) -> Path:
    return Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"  # this test session's Ray


def assert_secret_stays_in_its_key_file(key_file: Path, printed: str, ray: Any) -> None:
    """The wallet's secret is a canary: it may be in its 0600 key file and nowhere else, not in what
    the cycle printed, the Ray session's logs, the blobs, the checkpoints, the artifacts or the ledger."""
    assert key_file.stat().st_mode & 0o777 == 0o600
    secret = key_file.read_text().strip()
    assert len(secret) >= 32 and secret not in printed
    scanned, hits = files_holding(secret, [key_file.parent, ray_session_logs(ray)], skip=(key_file,))
    assert scanned > 20 and hits == [], hits


@pytest.mark.slow
@pytest.mark.parametrize("served", [False, True], ids=["sim", "served-sdk"])
def test_the_cycle_on_a_fresh_network(tmp_path: Path, ray_session: Any, served: bool) -> None:
    """The whole game; with `cycle.served` the same network is served behind the wire protocol and
    the driver, the submitter and training's commit path all go through the official soma-sdk
    client (SdkChain)."""
    from soma_ray.driver.actor import NAMESPACE, actor_name

    config = cycle_config(tmp_path, f"cycle.served={str(served).lower()}")
    stale = config.folder / "stale.txt"
    stale.parent.mkdir(parents=True)
    (config.folder / MARKER).touch()
    stale.write_text("from an earlier run")
    out = io.StringIO()
    result = run_cycle(config, Console(file=out, width=200))

    assert not stale.exists()  # fresh: the folder was wiped first
    assert result.active_at_reveal and result.reveal_epoch == result.commit_epoch + 1
    assert result.targets_with_model >= 1 and result.open_targets > result.targets_with_model
    fills, ledger = len(result.fills), result.ledger
    assert 1 <= fills <= 3 and result.hits >= fills
    assert ledger.submissions == ledger.claims == fills  # every fill claimed two epochs later
    assert ledger.bonds_returned == ledger.bonds_locked > 0
    assert ledger.rewards_as_submitter > 0 and ledger.claimer_incentives > 0
    assert result.pending == []
    assert result.stake == config.driver.model_stake == ledger.model_stake
    # The ledger adds up to what the chain says, to the shannon.
    assert result.balance_after == (
        result.balance_before - result.stake - result.fees - ledger.bonds_locked + ledger.bonds_returned
        + ledger.rewards_as_submitter + ledger.rewards_as_model_owner + ledger.claimer_incentives
    )
    assert result.unexplained == 0
    assert result.balance_before == config.cycle.faucet_requests * 2 * 10**9
    # ... and its fees and actions to the network's own transaction records.
    chain = sim_txs(config.folder / "sim" / "sim.db", result.address)
    assert chain["fees"] == result.fees
    assert chain["ok"]["CreateModel"] == chain["ok"]["CommitModel"] == chain["ok"]["RevealModel"] == 1
    assert chain["ok"]["SubmitData"] == chain["ok"]["ClaimRewards"] == fills

    printed = out.getvalue()
    for line in ("step 7/7", "ledger of this cycle", "unexplained", "driver actor stopped"):
        assert line in printed
    assert_secret_stays_in_its_key_file(config.folder / "wallet.key", printed, ray_session)
    assert ("network served at http://127.0.0.1:" in printed) == served
    if served:  # signed by the client: the network recorded the transactions' real digests
        with sqlite3.connect(config.folder / "sim" / "sim.db") as conn:
            digests = [d for (d,) in conn.execute("SELECT digest FROM txs WHERE sender = ?", (result.address,))]
        assert len(digests) == sum(chain["ok"].values()) and all(len(base58.b58decode(d)) == 32 for d in digests)
    assert result.driver_stopped
    name = actor_name(config.submit_config())
    deadline = time.monotonic() + 30
    while True:  # ray.kill is asynchronous: the name is released once the actor is dead
        try:
            ray_session.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            break
        assert time.monotonic() < deadline, "the driver actor outlived the cycle"
        time.sleep(0.5)


def test_only_a_folder_the_cycle_made_is_wiped(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    prepare_folder(mine, fresh=True)
    (mine / "old").write_text("x")
    prepare_folder(mine, fresh=True)
    assert (mine / MARKER).is_file() and not (mine / "old").exists()
    (mine / "kept").write_text("x")
    prepare_folder(mine, fresh=False)
    assert (mine / "kept").exists()

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "precious").write_text("x")
    with pytest.raises(CycleError, match="was not made by the cycle"):
        prepare_folder(theirs, fresh=True)
    assert (theirs / "precious").exists()
    with pytest.raises(CycleError, match="holds the working directory"):
        prepare_folder(Path.cwd().parent, fresh=True)


def test_the_recipe_derives_every_path_from_the_folder(tmp_path: Path) -> None:
    config = cycle_config(tmp_path)
    train, submit = config.train_config(), config.submit_config()
    folder = (tmp_path / "cycle").resolve()
    assert train.chain.sim.path == submit.chain.sim.path == folder / "sim"
    assert train.wallet.key_file == submit.wallet.key_file == folder / "wallet.key"
    assert submit.driver.state_path == folder / "driver.db"
    assert train.training.storage_path == str(folder / "train") and train.export.dir == folder / "artifacts"
    assert submit.storage.local.root == folder / "sim" / "blobs"
    assert submit.storage.local.base_url == config.chain.sim.blob_url
    assert train.architecture == config.chain.sim.architecture  # the network's shape, so it can be committed
    assert train.training.max_steps == 10 and train.training.num_workers == 2  # recipe + override
    # Defaults alone make a short cycle over the package's own files.
    bare = load_config(CycleConfig, None, [], env={})
    assert bare.training.max_steps == 30 and bare.training.precision == "float32"
    assert bare.data.path is not None and (bare.data.path / "cycle.py").is_file()


@pytest.mark.parametrize(("override", "field"), [
    ("chain.network=testnet", "chain"),
    ("wallet.key_file=elsewhere.key", "wallet"),
    ("storage.local.root=/tmp/blobs", "storage"),
    ("storage.kind=s3", "storage"),
    ("driver.state_path=elsewhere.db", "driver"),
    ("training.storage_path=/tmp/x", "training"),
    ("export.commit=true", "export"),
    ("chain.sim.path=/tmp/sim", "chain"),
    ("model.embedding_dim=32", "model"),
])
def test_paths_and_networks_the_cycle_owns_are_refused(override: str, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"cycle\.yaml: {field}: "):
        load_job_config(RECIPE, [override], env={})


def test_a_bad_cycle_recipe_is_one_line(tmp_path: Path) -> None:
    recipe = tmp_path / "c.yaml"
    recipe.write_text("kind: cycle\ncycle:\n  faucet_requests: 0\n")
    proc = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "cycle.py"), "--config", str(recipe)],
        check=False, capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {recipe}: cycle.faucet_requests: ")


@pytest.mark.slow
def test_the_cycle_on_your_own_bucket_keeps_both_secrets(tmp_path: Path, ray_session: Any, moto_endpoint: str) -> None:
    """`storage.kind: s3` (a real S3 server on 127.0.0.1) with a canary S3 secret: the data and the
    weights go to the bucket, and neither the S3 secret nor the wallet's is in anything the cycle
    printed, the Ray session's logs, the cycle's folder (checkpoints, artifacts, ledger) or any
    object it uploaded."""
    import secrets

    import boto3

    s3_secret = "canarysecret" + secrets.token_hex(16)
    bucket = "cycle-" + secrets.token_hex(4)
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="canaryid", aws_secret_access_key=s3_secret)
    client.create_bucket(Bucket=bucket)
    config = cycle_config(
        tmp_path, "storage.kind=s3", f"storage.s3.bucket={bucket}", f"storage.s3.endpoint_url={moto_endpoint}",
        "storage.s3.region=us-east-1", "storage.s3.access_key_id=canaryid",
        f"storage.s3.secret_access_key={s3_secret}", "submit.max_fills=1",
    )
    out = io.StringIO()
    result = run_cycle(config, Console(file=out, width=200))
    assert result.active_at_reveal and len(result.fills) == 1 and result.unexplained == 0

    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(k.startswith("models/") for k in keys) and any(k.startswith("data/") for k in keys), keys
    printed = out.getvalue()
    assert s3_secret not in printed
    scanned, hits = files_holding(s3_secret, [config.folder, ray_session_logs(ray_session)])
    uploaded = [k for k in keys if s3_secret.encode() in client.get_object(Bucket=bucket, Key=k)["Body"].read()]
    assert scanned > 20 and hits == [] and uploaded == [], (hits, uploaded)
    assert_secret_stays_in_its_key_file(config.folder / "wallet.key", printed, ray_session)


@pytest.mark.slow
def test_the_board_cycle_writes_its_review(tmp_path: Path, ray_session: Any) -> None:
    """configs/board.yaml: rivals on a clustered board, several epochs; the driver stores a board
    snapshot at each new epoch and the cycle ends with a review folder whose P&L is the ledger's."""
    from dataclasses import replace

    from soma_ray.board.snapshot import SnapshotStore
    from soma_ray.driver.state import DriverState
    from soma_ray.review.pnl import as_ledger
    from soma_ray.review.render import PICTURES
    from soma_ray.review.run import review_of
    from tests.board.test_plots import assert_picture

    config = load_config(CycleConfig, REPO / "configs" / "board.yaml", [
        f"cycle.folder={tmp_path / 'board'}", f"chain.sim.blob_url=http://127.0.0.1:{free_port()}",
        f"data.path={REPO / 'soma_ray'}", "training.max_steps=10", "training.eval_every=10",
        "training.checkpoint_every=10", "submit.max_fills=3",
    ], env={})
    out = io.StringIO()
    result = run_cycle(config, Console(file=out, width=200))
    assert result.review == config.folder / "review"
    for name, _ in PICTURES:
        assert_picture(result.review / name)
    assert (result.review / "review.md").read_text().startswith("# Epoch review")
    assert "data:image/png;base64," in (result.review / "review.html").read_text()
    assert "epoch review:" in out.getvalue()
    epochs = SnapshotStore(config.folder / "board").epochs()
    assert len(epochs) >= config.cycle.warmup_epochs  # one per epoch the driver saw, and the cycle's last
    state = DriverState(config.folder / "driver.db")
    try:
        review = review_of(state, result.address, config.review)
        assert as_ledger(review.pnl_total, result.ledger.start_balance) == replace(
            result.ledger, start_balance=result.ledger.start_balance)
        assert review.ours == (result.model_id,)
        assert {o.target_id for o in review.wins if o.how == "we filled it"} == set(result.fills)
        # rivals' claims of targets our model won pay us outside our ledger: the cycle's ledger counts them
        assert result.paid_by_others == review.paid_by_others
    finally:
        state.close()


def test_the_ledger_table_counts_what_others_claims_paid_us() -> None:
    """A rival's claim of a target our model won pays us the model owner's share outside our ledger
    (§6): the cycle's table shows it as its own line, so that the unexplained line stays 0."""
    from soma_ray.cycle import CycleResult, ledger_table
    from soma_ray.driver.results import Ledger

    ledger = Ledger(start_balance=6_000, fees=50, rewards_as_submitter=300, claims=1, submissions=1)
    plain = dict(address="0xa", model_id="0xm", commit_epoch=0, reveal_epoch=1, active_at_reveal=True, open_targets=3,
                 targets_with_model=1, hits=1, fills=["0xt"], balance_before=6_000, balance_after=6_250 + 40, stake=0,
                 ledger=ledger, pending=[])
    unpaid = CycleResult(**plain)  # type: ignore[arg-type]
    paid = CycleResult(**plain, paid_by_others=40)  # type: ignore[arg-type]
    assert (unpaid.unexplained, paid.unexplained) == (40, 0)

    def shown(result: CycleResult) -> str:
        out = io.StringIO()
        Console(file=out, width=200).print(ledger_table(result))
        return out.getvalue()

    assert "paid us by others' claims" not in shown(unpaid)
    row = next(line for line in shown(paid).splitlines() if "paid us by others' claims" in line)
    assert row.split("│")[2].strip() == "+40"
    unexplained = next(line for line in shown(paid).splitlines() if "unexplained" in line)
    assert unexplained.split("│")[2].strip() == "0"
