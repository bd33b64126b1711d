"""The scoring pool's actor count follows the work (issue 6 §2).

On Ray's autoscaling test cluster (the fake multi-node provider, see `kit.FakeAutoscalingCluster`): a head
node without the `scorer` resource, and a `scorer` node type ({CPU: 1, scorer: 1}) that the
autoscaler may start up to 4 of. A backlog of scoring work makes Ray Data's actor pool grow from
1 actor to its maximum of 3; each actor asks for `scorer`, so the autoscaler adds a scorer node
per actor: 3, never the 4 the node type allows, and never more than 3 actors. Every sample is
scored exactly once while the pool grows. When the stream is done the pool goes away, and the
idle scorer nodes are released.

The head gets 4 logical CPUs: besides the pool's pending actors, Ray Data's own cluster
autoscaler asks Ray for CPU-only bundles (its operators' CPU needs, without custom resources).
On a head too small to hold them, Ray starts a scorer node for that request alone (seen with a
2-CPU head: a 4th node for ~10 s, then released idle); on this head they fit, so scorer nodes
follow the pool's actors only.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
from ray.util.state import list_actors

from soma_ray.scoring.config import ScoringSection
from soma_ray.scoring.pool import ScoringPlan, score_stream
from tests.cluster.kit import FakeAutoscalingCluster
from tests.scoring.test_pool import corpus

MAX_ACTORS = 3  # the pool's maximum
NODE_TYPE_MAX = 4  # the scorer node type allows one node more than the pool ever needs
MiB = 1024 * 1024


def scorer_nodes() -> list[str]:
    """Ids of the alive nodes carrying the `scorer` resource."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return [n["NodeID"] for n in nodes if n["Alive"] and n["Resources"].get("scorer", 0) > 0]


def scoring_actors() -> list[Any]:
    """The pool's actors that are not dead (Ray Data runs the UDF in `_MapWorker` actors)."""
    actors = list_actors(filters=[("state", "!=", "DEAD")], limit=1000, timeout=10, raise_on_missing_output=False)
    return [a for a in actors if "MapWorker" in a.class_name]


@dataclass
class Watch:
    """What a background poller saw: peaks, and a coarse timeline for failure messages."""

    peak_nodes: int = 0
    peak_alive: int = 0  # ALIVE scoring actors
    peak_live: int = 0  # not DEAD: alive, pending or restarting
    off_scorer_nodes: set[str] = field(default_factory=set)  # alive actors placed elsewhere
    first_full_s: float | None = None
    errors: int = 0
    timeline: list[tuple[float, int, int, int]] = field(default_factory=list)  # (s, nodes, alive, live)

    def summary(self) -> str:
        steps: list[tuple[float, int, int, int]] = []
        for entry in self.timeline:
            if not steps or entry[1:] != steps[-1][1:]:
                steps.append(entry)
        shown = ", ".join(f"{s:.0f}s: {n} nodes/{a} alive/{v} live" for s, n, a, v in steps[-25:])
        return (
            f"peak scorer nodes {self.peak_nodes}, peak alive actors {self.peak_alive}, peak live actors "
            f"{self.peak_live}, full pool at {self.first_full_s}, poll errors {self.errors}; timeline: {shown}"
        )


def watch(stop: threading.Event, seen: Watch, start: float) -> None:
    while not stop.is_set():
        try:
            nodes = set(scorer_nodes())
            actors = scoring_actors()
        except Exception:  # noqa: BLE001 - a slow or failed state API call on a loaded machine: poll again
            seen.errors += 1
        else:
            alive = [a for a in actors if a.state == "ALIVE"]
            seen.off_scorer_nodes.update(a.actor_id for a in alive if a.node_id not in nodes)
            seen.peak_nodes = max(seen.peak_nodes, len(nodes))
            seen.peak_alive = max(seen.peak_alive, len(alive))
            seen.peak_live = max(seen.peak_live, len(actors))
            now = time.monotonic() - start
            if seen.first_full_s is None and len(alive) == MAX_ACTORS:
                seen.first_full_s = now
            seen.timeline.append((now, len(nodes), len(alive), len(actors)))
        stop.wait(0.5)


@pytest.fixture
def autoscaling_cluster(no_session_ray: None) -> Iterator[FakeAutoscalingCluster]:
    cluster = FakeAutoscalingCluster(
        head_resources={"CPU": 4, "object_store_memory": 150 * MiB},
        worker_node_types={
            "scorer": {
                "resources": {"CPU": 1, "scorer": 1, "object_store_memory": 100 * MiB},
                "min_workers": 0,
                "max_workers": NODE_TYPE_MAX,
            }
        },
        idle_timeout_minutes=0.1,  # idle scorer nodes go after ~6 s
    )
    try:
        ray.init(address=cluster.start(), log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
@pytest.mark.timeout(480)  # ~75 s here idle, ~140 s with one core kept busy
def test_pool_grows_to_its_max_on_new_nodes_and_idle_nodes_are_released(
    tmp_path: Path, served_sim: Any, autoscaling_cluster: FakeAutoscalingCluster
) -> None:
    sim, _ = served_sim
    targets = asyncio.run(sim.all_targets("open"))
    ids = sorted({m for t in targets for m in t.model_ids})
    manifests = dict(zip(ids, asyncio.run(sim.model_manifests(ids)), strict=True))
    plan = ScoringPlan(model_config=sim.settings.architecture.shape(), manifests=manifests, targets=targets)
    count = 500
    data = corpus(tmp_path, count, 2000)
    settings = ScoringSection(
        min_actors=1, max_actors=MAX_ACTORS, num_cpus_per_actor=1, resources_per_actor={"scorer": 1},
        autoscaling=True,  # no scorer node yet: the stages wait for the autoscaler
        batch_samples=2, cache_dir=tmp_path / "cache",
    )
    assert scorer_nodes() == [], "no scorer node before there is work"

    seen = Watch()
    stop = threading.Event()
    start = time.monotonic()
    poller = threading.Thread(target=watch, args=(stop, seen, start), daemon=True)
    poller.start()
    scored: list[int] = []
    try:
        for batch in score_stream(data, plan, settings):
            scored.extend(batch["sample_id"].tolist())
            assert np.isfinite(batch["losses"]).all()
    finally:
        stop.set()
        poller.join()
    streamed_s = time.monotonic() - start

    assert sorted(scored) == list(range(count)), "every sample scored exactly once"
    assert seen.peak_nodes == MAX_ACTORS, f"scorer nodes should grow to the pool's max: {seen.summary()}"
    assert seen.peak_alive == MAX_ACTORS, f"alive scoring actors should reach the max: {seen.summary()}"
    assert seen.peak_live <= MAX_ACTORS, f"never more actors than the max, pending included: {seen.summary()}"
    assert not seen.off_scorer_nodes, f"scoring actors ran off the scorer nodes: {seen.off_scorer_nodes}"

    deadline = time.monotonic() + 120
    left: tuple[list[str], list[Any]] = (scorer_nodes(), scoring_actors())
    while (left[0] or left[1]) and time.monotonic() < deadline:
        time.sleep(1)
        left = (scorer_nodes(), scoring_actors())
    assert not left[1], f"scoring actors still alive 120 s after the stream ended: {len(left[1])}"
    assert not left[0], (
        f"{len(left[0])} idle scorer nodes not released 120 s after the stream ended ({streamed_s:.0f} s); "
        f"{seen.summary()}"
    )
