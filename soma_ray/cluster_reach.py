"""How far a cluster's autoscaler may grow it: what an autoscaler reported to Ray, else the
cluster config `ray up` leaves on the head node (`~/ray_bootstrap_config.yaml`, the file Ray's
autoscaler runs from; Ray Tune takes its presence to mean "an autoscaling cluster" too). A job
submitted with `ray job submit` runs on the head, so it sees the file; elsewhere the answer is None
(nothing is known of an autoscaler). Used by the pool's fit check and the doctor, with `unmet_demand`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

BOOTSTRAP_CONFIG = "ray_bootstrap_config.yaml"


def unmet_demand(demand: Mapping[str, float], cluster: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """{resource: (needed, the cluster's total)} for each resource the cluster (now, or at its
    reach) lacks."""
    slack = 1e-9  # Ray's resource arithmetic is fixed-point; 0.1 + 0.2 must fit 0.3
    return {name: (need, float(cluster.get(name, 0.0))) for name, need in demand.items()
            if need > float(cluster.get(name, 0.0)) + slack}


def reach_of_cluster_config(config: Mapping[str, Any]) -> dict[str, float]:
    """The most of each resource the config's node types can add up to: the head node's once, plus
    the workers richest in that resource, each type up to its `max_workers` and all together up to
    the cluster's `max_workers` (when set)."""
    types = config.get("available_node_types") or {}
    head = config.get("head_node_type")
    cap = config.get("max_workers")
    most: dict[str, float] = {}
    workers: list[tuple[int, dict[str, float]]] = []
    for name, node_type in types.items():
        resources = {k: float(v) for k, v in ((node_type or {}).get("resources") or {}).items()}
        if name == head:
            for resource, amount in resources.items():
                most[resource] = most.get(resource, 0.0) + amount
        else:
            workers.append((int((node_type or {}).get("max_workers", 0) or 0), resources))
    for resource in {r for _, resources in workers for r in resources}:
        left = int(cap) if cap is not None else sum(count for count, _ in workers)
        for count, resources in sorted(workers, key=lambda w: -w[1].get(resource, 0.0)):
            taken = min(count, left)
            most[resource] = most.get(resource, 0.0) + taken * resources.get(resource, 0.0)
            left -= taken
    return most


def bootstrap_reach(home: Path) -> dict[str, float] | None:
    """The reach of the cluster config under `home`, or None when there is none or it cannot be read."""
    try:
        config = yaml.safe_load((home / BOOTSTRAP_CONFIG).read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(config, dict) or not isinstance(config.get("available_node_types"), dict):
        return None
    return reach_of_cluster_config(config) or None


def reported_reach() -> dict[str, float] | None:
    """What an autoscaler reported to the Ray this process joined (Ray Train reads the same report
    before it starts a worker group; a private Ray 2.x name, so any failure means "not reported")."""
    try:
        from ray._private.state import state

        most = state.get_max_resources_from_cluster_config()
    except Exception:  # noqa: BLE001 - a Ray without it, or not joined
        return None
    return {k: float(v) for k, v in most.items()} if most else None


def autoscaler_reach(home: Path | None = None) -> dict[str, float] | None:
    """The most of each resource the cluster may grow to, or None when no autoscaler is known.
    Needs a joined Ray for the reported part; `home` defaults to this user's."""
    return reported_reach() or bootstrap_reach(home if home is not None else Path.home())
