"""A Ray autoscaling test cluster (the fake multi-node provider) that starts and stops only its
own processes.

`ray.cluster_utils.AutoscalingCluster` is the model, but it cannot be used as is here:
- its `start()` and `shutdown()` run `ray stop --force`, which kills every Ray process on the
  machine, another test's cluster included;
- it builds its config from `fake_multi_node/example.yaml`, which the Ray wheel does not ship.

So this kit writes the (v1) autoscaler config itself and starts the head as a `LocalCluster`
head with that config: its own temp dir and free ports (the fake worker nodes connect to the
given GCS address rather than the default 6379). The autoscaler starts the fake nodes from the
head's process session, so `LocalCluster.stop` stops them too, and nothing else.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from tests.cluster.local_cluster import LocalCluster, free_port

HEAD_NODE_TYPE = "ray.head.default"


def autoscaler_config(
    gcs_address: str, head_resources: dict[str, int], worker_node_types: dict[str, Any], idle_timeout_minutes: float
) -> dict[str, Any]:
    """A complete v1 autoscaler config for the fake multi-node provider."""
    node_types = {name: {"node_config": {}, **spec} for name, spec in worker_node_types.items()}
    node_types[HEAD_NODE_TYPE] = {"resources": head_resources, "node_config": {}, "max_workers": 0}
    return {
        "cluster_name": "fake-autoscaling",
        "max_workers": sum(spec.get("max_workers", 0) for spec in worker_node_types.values()),
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_timeout_minutes,
        "provider": {
            "type": "fake_multinode",
            "gcs_address": gcs_address,  # not the default 127.0.0.1:6379, which may be another cluster
            "use_node_id_as_ip": True,  # every fake node has the same IP
            "disable_node_updaters": True,  # the provider starts Ray on its nodes itself
            "disable_launch_config_check": True,
        },
        "auth": {"ssh_user": "ray"},
        "head_node_type": HEAD_NODE_TYPE,
        "available_node_types": node_types,
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


class FakeAutoscalingCluster(LocalCluster):
    """`start()` → the GCS address to `ray.init`; `shutdown()` stops this cluster's processes only.

    `head_resources` may hold CPU, object_store_memory (bytes) and custom resources;
    `worker_node_types` is the autoscaler's `available_node_types` for the workers (each with
    `resources`, `min_workers`, `max_workers`; `object_store_memory` in `resources` sizes a
    worker's object store).
    """

    def __init__(
        self,
        head_resources: dict[str, int],
        worker_node_types: dict[str, Any],
        *,
        idle_timeout_minutes: float = 0.1,
        update_interval_s: int = 1,
    ) -> None:
        # Short: Unix socket paths under it must stay below ~107 characters.
        super().__init__(Path(tempfile.mkdtemp(prefix="rayas-", dir="/tmp")))
        self.head_resources = dict(head_resources)
        self.worker_node_types = worker_node_types
        self.idle_timeout_minutes = idle_timeout_minutes
        self.update_interval_s = update_interval_s

    def start(self) -> str:
        head = dict(self.head_resources)
        config = autoscaler_config(
            self.address, {k: v for k, v in head.items() if k != "object_store_memory"},
            self.worker_node_types, self.idle_timeout_minutes,
        )
        config_path = self.temp_dir / "autoscaling.json"
        config_path.write_text(json.dumps(config))
        num_cpus = head.pop("CPU", 0)
        head.pop("GPU", None)
        self.start_head(
            num_cpus, head, object_store_bytes=head.pop("object_store_memory", 200_000_000),
            extra_args=[f"--autoscaling-config={config_path}"],
            extra_env={
                "RAY_FAKE_CLUSTER": "1",
                "AUTOSCALER_UPDATE_INTERVAL_S": str(self.update_interval_s),
                "AUTOSCALER_METRIC_PORT": str(free_port()),  # the default 44217 may be taken
            },
        )
        return self.address

    def shutdown(self) -> None:
        self.stop()
