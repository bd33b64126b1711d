"""A Ray autoscaling test cluster (the fake multi-node provider) that starts and stops only its
own processes.

`ray.cluster_utils.AutoscalingCluster` is the model, but it cannot be used as is here:
- its `start()` and `shutdown()` run `ray stop --force`, which kills every Ray process on the
  machine, another test's cluster included;
- it builds its config from `fake_multi_node/example.yaml`, which the Ray wheel does not ship.

So this kit writes the (v1) autoscaler config itself, starts the head with `ray start --head`
under its own temp dir on free ports (the fake worker nodes share that temp dir and connect to
the given GCS address rather than the default 6379), and on shutdown stops exactly the processes
whose command line names that temp dir or that GCS address, and their children (the workers,
which rename their command line to `ray::...`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from tests.cluster.local_cluster import free_port

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


class FakeAutoscalingCluster:
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
        self.head_resources = dict(head_resources)
        self.worker_node_types = worker_node_types
        self.idle_timeout_minutes = idle_timeout_minutes
        self.update_interval_s = update_interval_s
        # Short: Unix socket paths under it must stay below ~107 characters.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rayas-", dir="/tmp"))
        self.address = ""

    def start(self) -> str:
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        config = autoscaler_config(
            self.address, {k: v for k, v in self.head_resources.items() if k != "object_store_memory"},
            self.worker_node_types, self.idle_timeout_minutes,
        )
        config_path = self.temp_dir / "autoscaling.json"
        config_path.write_text(json.dumps(config))
        head = dict(self.head_resources)
        cmd = [
            str(Path(sys.executable).with_name("ray")), "start", "--head",
            f"--port={port}",
            f"--temp-dir={self.temp_dir}",
            f"--autoscaling-config={config_path}",
            "--node-ip-address=127.0.0.1",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            "--include-dashboard=true",  # the state API (`ray.util.state`) is served by it
            "--disable-usage-stats",
            f"--num-cpus={head.pop('CPU', 0)}",
            f"--num-gpus={head.pop('GPU', 0)}",
        ]
        if "object_store_memory" in head:
            cmd.append(f"--object-store-memory={head.pop('object_store_memory')}")
        if head:
            cmd.append(f"--resources={json.dumps(head)}")
        env = {
            **os.environ,
            "RAY_FAKE_CLUSTER": "1",
            "AUTOSCALER_UPDATE_INTERVAL_S": str(self.update_interval_s),
            "AUTOSCALER_METRIC_PORT": str(free_port()),  # the default 44217 may be taken
        }
        env.pop("RAY_ADDRESS", None)
        done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"ray start failed ({done.returncode}): {done.stdout[-3000:]}{done.stderr[-3000:]}")
        return self.address

    def processes(self) -> list[psutil.Process]:
        """This cluster's processes and all their children: those naming its temp dir or its GCS
        address (the Ray client server names only the latter)."""
        marker = re.compile(re.escape(str(self.temp_dir)) + (rf"|{re.escape(self.address)}(?!\d)" if self.address else ""))
        found: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                if any(marker.search(part) for part in proc.info["cmdline"] or []):
                    found[proc.pid] = proc
                    for child in proc.children(recursive=True):
                        found[child.pid] = child
            except psutil.Error:
                continue
        found.pop(os.getpid(), None)
        return list(found.values())

    def shutdown(self, grace_s: float = 3.0) -> None:
        """Terminate this cluster's processes (then kill what is left) and remove its temp dir."""
        for attempt in range(3):  # the autoscaler may have been starting a node meanwhile
            procs = self.processes()
            if not procs:
                break
            for proc in procs:
                try:
                    proc.send_signal(signal.SIGTERM if attempt == 0 else signal.SIGKILL)
                except psutil.Error:
                    pass
            for proc in _wait_gone(procs, grace_s):
                try:
                    proc.kill()
                except psutil.Error:
                    pass
            _wait_gone(procs, grace_s)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until every process has exited (a zombie counts: its parent may never reap it);
    return those still running after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        running = []
        for proc in procs:
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    running.append(proc)
            except psutil.Error:
                pass
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(0.2)
