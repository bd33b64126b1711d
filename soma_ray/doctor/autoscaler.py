"""How far a cluster's autoscaler may grow it, from the cluster config `ray up` leaves on the head
node (`~/ray_bootstrap_config.yaml`, the file Ray's autoscaler runs from; Ray Tune takes its
presence to mean "an autoscaling cluster" too). A job submitted with `ray job submit` runs on the
head, so the doctor run there sees it; elsewhere there is none and the answer is None."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

BOOTSTRAP_CONFIG = "ray_bootstrap_config.yaml"


def reach_of_cluster_config(config: Mapping[str, Any]) -> dict[str, float]:
    """The most of each resource the config's node types add up to: the head node's once, each
    worker type's times its `max_workers`."""
    types = config.get("available_node_types") or {}
    head = config.get("head_node_type")
    most: dict[str, float] = {}
    for name, node_type in types.items():
        count = 1 if name == head else int((node_type or {}).get("max_workers", 0) or 0)
        for resource, amount in ((node_type or {}).get("resources") or {}).items():
            most[resource] = most.get(resource, 0.0) + float(amount) * count
    return most


def autoscaler_reach(home: Path) -> dict[str, float] | None:
    """The reach of the cluster config under `home`, or None when there is none or it cannot be
    read (then nothing is known of an autoscaler)."""
    try:
        config = yaml.safe_load((home / BOOTSTRAP_CONFIG).read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(config, dict) or not isinstance(config.get("available_node_types"), dict):
        return None
    return reach_of_cluster_config(config) or None
