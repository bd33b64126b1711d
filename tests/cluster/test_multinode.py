"""soma-ray on a real two-node Ray cluster, the way users run it: `ray job submit --working-dir .
--runtime-env-json ...` for the training job, the submitter job and the driver job.

The head is the "scorer" node (custom resource `scorer`), the second node the "trainer" node
(`trainer`); recipes ask for those resources, so scoring actors must land on the head and the
training workers on the second node. The wallet's driver actor lives on the head. The simulated
network's SQLite file is on a disk both nodes reach (here: the same machine; on a real cluster, a
shared volume). The wallet's secret reaches the jobs only as a runtime-env variable, and `.env`,
virtual environments, caches and checkpoints stay out of the uploaded working directory.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from soma_sdk import Keypair

from soma_ray.driver.actions import ActionStatus, ClaimPayload, CommitPayload, SubmitPayload
from soma_ray.driver.state import DriverState
from tests.cluster.kit import LocalCluster
from tests.training.kit import write_corpus

REPO = Path(__file__).resolve().parents[2]
# What docs/cluster.md tells users to pass as the runtime environment's `excludes`.
EXCLUDES = [".env", ".venv", ".soma-ray", "**/__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
            "checkpoints", "artifacts", "*.safetensors"]
CANARY = "canary-secret-0123456789"
# What must never be uploaded, planted in the working directory.
PLANTED = [".env", ".venv/lib/canary.txt", "soma_ray/__pycache__/canary.pyc", ".soma-ray/wallet.key",
           "checkpoints/step_1/canary.bin", "artifacts/weights.safetensors", ".mypy_cache/canary.json"]
METRICS = ["soma_ray_score_samples", "soma_ray_score_tokens", "soma_ray_score_tokens_per_second",
           "soma_ray_score_hits", "soma_ray_submissions", "soma_ray_claims", "soma_ray_rewards",
           "soma_ray_train_tokens_per_second", "soma_ray_train_loss"]


@pytest.fixture(scope="module")
def cluster(no_session_ray: None) -> Iterator[LocalCluster]:
    temp = Path(f"/tmp/srt-{int(time.time() * 1000) % 10**8}")  # short: Unix socket paths
    cluster = LocalCluster(temp)
    try:
        cluster.start_head(num_cpus=3, resources={"scorer": 2})
        cluster.add_node(num_cpus=2, resources={"trainer": 2})
        yield cluster
    finally:
        cluster.stop()
        left = cluster.processes()
        assert not left, f"Ray processes left running: {left}"


def working_dir(root: Path) -> Path:
    """What a user's checkout looks like: the project, plus things that must not be uploaded."""
    wd = root / "checkout"
    for name in ("soma_ray", "jobs", "configs"):
        shutil.copytree(REPO / name, wd / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", wd)
    for planted in PLANTED:
        (wd / planted).parent.mkdir(parents=True, exist_ok=True)
        (wd / planted).write_text(f"SOMA_SECRET_KEY={CANARY}\n")
    return wd


def recipes(wd: Path, root: Path, sim: Any, blob_url: str) -> dict[str, str]:
    """The three jobs' recipes, inside the working directory (uploaded with it), with absolute
    paths for what both nodes share and what outlives a job: network, ledger, runs."""
    common = {
        "chain": {"network": "sim", "sim": sim.settings.model_dump(mode="json")},
        "storage": {"kind": "local", "local": {"root": str(sim.settings.blob_dir), "base_url": blob_url}},
        "wallet": {"secret_key": "${SOMA_SECRET_KEY}"},
        "driver": {"state_path": str(root / "driver.db")},
    }
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(f"sample {i}: " + "abc " * (i % 13 + 1) for i in range(160)))
    train = {
        **common, "kind": "train",
        "data": {"source": "files", "path": str(write_corpus(root)), "max_bytes": 4096},
        "heldout": {"every": 4, "max_samples": 2},
        "training": {"name": "cluster", "storage_path": str(root / "runs"), "num_workers": 2, "use_gpu": False,
                     "cpus_per_worker": 1, "resources_per_worker": {"trainer": 1}, "precision": "float32",
                     "micro_batch": 2, "warmup_steps": 0, "max_steps": 4, "log_every": 1, "eval_every": 2,
                     "checkpoint_every": 2, "max_failures": 0},
        "export": {"dir": str(root / "artifacts"), "commit": True},
    }
    submit = {
        **common, "kind": "submit",
        "data": {"source": "text", "path": str(corpus), "text_unit": "line"},
        "scoring": {"min_actors": 1, "max_actors": 2, "num_cpus_per_actor": 1, "resources_per_actor": {"scorer": 1},
                    "batch_samples": 16, "cache_dir": str(root / "model-cache")},
        "submit": {"max_fills": 2, "progress_interval_s": 1},
    }
    folder = wd / "recipes"
    folder.mkdir()
    paths = {}
    for name, recipe in (("train", train), ("submit", submit)):
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
        paths[name] = f"recipes/{name}.yaml"
    return paths


def wait_for(what: str, check: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


class MetricsWatch:
    """Scrapes every node's metrics endpoint while the jobs run (a finished job's series may go)."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster, self.seen = cluster, {}  # type: dict[str, float]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for name, value in self.cluster.scrape().items():
                self.seen[name] = max(self.seen.get(name, value), value)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return self.seen


def value_of(seen: dict[str, float], metric: str) -> float | None:
    """A metric as Ray exports it: prefixed `ray_`, counters suffixed `_total`."""
    for name in (f"ray_{metric}", f"ray_{metric}_total"):
        if name in seen:
            return seen[name]
    return None


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_jobs_run_on_their_nodes_of_a_two_node_cluster(cluster: LocalCluster, served_sim: Any, tmp_path: Path) -> None:
    from ray.util.state import list_actors, list_nodes

    sim, server = served_sim
    keypair = Keypair.generate()
    for _ in range(3):
        asyncio.run(sim.faucet(keypair.address()))
    secret = keypair.to_secret_key()
    wd = working_dir(tmp_path)
    paths = recipes(wd, tmp_path, sim, server.url)
    runtime_env = {"env_vars": {"SOMA_SECRET_KEY": secret}, "excludes": EXCLUDES}
    ledger = tmp_path / "driver.db"
    watch = MetricsWatch(cluster)
    outputs = []

    def submit(name: str, *entrypoint: str) -> str:
        job = cluster.submit(wd, runtime_env, ["python", *entrypoint], submission_id=f"soma-ray-{name}")
        outputs.append(job.stdout + job.stderr)
        assert job.returncode == 0, f"{name} job failed:\n{job.stdout[-4000:]}\n{job.stderr[-2000:]}"
        return job.stdout

    # Training (2 workers on the trainer node); the driver actor creates and commits the model.
    trained = submit("train", "jobs/train.py", "--config", paths["train"])
    assert "committed" in trained
    commit, = DriverState(ledger).actions(CommitPayload, (ActionStatus.DONE,))
    asyncio.run(sim.advance_epoch())  # the reveal epoch: the driver's epoch watcher reveals

    # Data submission: scoring actors on the scorer node, hits through the same driver actor.
    submitted = submit("submit", "jobs/submit_data.py", "--config", paths["submit"])
    fills = DriverState(ledger).actions(SubmitPayload, (ActionStatus.DONE,))
    assert len(fills) == 2, submitted[-3000:]
    for _ in range(2):  # the audit window: claims are due at fill epoch + 2
        asyncio.run(sim.advance_epoch())
    wait_for("the driver's claims", lambda: len(DriverState(ledger).actions(ClaimPayload, (ActionStatus.DONE,))) == 2)
    reveal = DriverState(ledger).get(f"reveal:{commit.payload.model_id}:{commit.payload.commit_epoch}")
    assert reveal is not None and reveal.status == ActionStatus.DONE

    # The driver job finds the running driver and shows its ledger.
    status = submit("driver", "jobs/driver.py", "--config", paths["submit"], "--once")
    assert canonical_prefix(keypair) in status and "2 / 2" in status, status[-3000:]

    time.sleep(3)  # one more scrape after the last job
    seen = watch.stop()

    # Placement: each kind of actor on its node.
    nodes = list_nodes(address=cluster.dashboard_url, detail=True)
    scorer_node = next(n.node_id for n in nodes if "scorer" in n.resources_total)
    trainer_node = next(n.node_id for n in nodes if "trainer" in n.resources_total)
    assert scorer_node != trainer_node
    actors = list_actors(address=cluster.dashboard_url, detail=True, limit=10_000)
    placed: dict[str, set[str]] = {}
    for actor in (a for a in actors if a.node_id):  # an actor the pool gave up before placing has none
        for kind in ("ScoringActor", "RayTrainWorker", "DriverActor"):
            if kind in actor.class_name or kind in (actor.repr_name or ""):
                placed.setdefault(kind, set()).add(actor.node_id)
    assert placed.get("ScoringActor") == {scorer_node}, placed
    assert placed.get("RayTrainWorker") == {trainer_node}, placed
    assert placed.get("DriverActor") == {scorer_node}, placed  # the head
    train_workers = [a for a in actors if a.class_name == "RayTrainWorker"]
    assert len(train_workers) == 2

    # Uploads: the project went up, nothing planted did, and the secret is in no file and no log.
    packages = [p for p in cluster.temp_dir.glob("**/session_latest/runtime_resources/working_dir_files/*")
                if p.is_dir()]
    assert len(packages) >= 2, packages  # unpacked on both nodes
    for package in packages:
        assert (package / "jobs" / "train.py").is_file() and (package / "recipes" / "submit.yaml").is_file()
        for planted in PLANTED:
            assert not (package / planted).exists(), f"{planted} was uploaded"
        for path in package.rglob("*"):
            if path.is_file():
                text = path.read_bytes()
                assert CANARY.encode() not in text and secret.encode() not in text, path
    for output in outputs:
        assert secret not in output and CANARY not in output

    # Metrics: the dashboard's Prometheus endpoints carried every soma-ray metric.
    missing = [m for m in METRICS if not value_of(seen, m)]
    assert not missing, f"metrics missing or zero: {missing}; soma-ray series seen: " + str(
        sorted(k for k in seen if "soma_ray" in k))
    assert value_of(seen, "soma_ray_submissions") == 2 and value_of(seen, "soma_ray_claims") == 2
    samples = re.findall(r"^(\d+) samples \(", submitted, re.MULTILINE)  # the job's closing line
    assert samples and value_of(seen, "soma_ray_score_samples") == int(samples[-1])


def canonical_prefix(keypair: Keypair) -> str:
    from soma_ray.protocol.commitments import canonical_address

    return canonical_address(keypair.address())[:16]


def test_the_docs_pass_the_excludes_this_test_checks() -> None:
    docs = (REPO / "docs" / "cluster.md").read_text()
    for pattern in EXCLUDES:
        assert f'\\"{pattern}\\"' in docs, pattern
