"""The Ray clusters the cluster tests start on this machine, stopping only their own processes.

## LocalCluster
A real multi-node Ray cluster on this machine: `ray start --head` and `ray start --address`.

Every node is started in a process session of its own, so that stopping the cluster stops
exactly the Ray processes this test started, nodes an autoscaler added included (never `ray
stop`, which would stop every Ray cluster on the machine), and the test can check that none is left.

## FakeAutoscalingCluster
A Ray autoscaling test cluster (the fake multi-node provider) that starts and stops only its
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
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_processes(session_ids: set[int]) -> dict[int, str]:
    """Live (non-zombie) processes whose session is one of `session_ids`: pid → command. A
    zombie counts as gone: its parent may be an init that never reaps it."""
    out = subprocess.run(["ps", "-eo", "pid=,sid=,stat=,args="], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        pid, sid, stat, *args = line.split(None, 3)
        if int(sid) in session_ids and not stat.startswith("Z") and int(pid) != os.getpid():
            found[int(pid)] = " ".join(args)[:120]
    return found


@dataclass
class LocalCluster:
    temp_dir: Path  # short: Ray's Unix socket paths live under it
    gcs_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)
    metrics_ports: list[int] = field(default_factory=list)  # one Prometheus endpoint per node
    sessions: set[int] = field(default_factory=set)
    log: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The nodes' environment. RAY_ADDRESS pins every process of this cluster (Ray Train's
        placement-group cleaner included) to it, even if another cluster runs on the machine."""
        return {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",  # allow a second node (design.md's 0 forbids it)
            "RAY_AUTH_MODE": "disabled",
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_ADDRESS": self.address,
            "RAY_metrics_report_interval_ms": "1000",  # metrics reach the endpoints within seconds
            **(extra or {}),
        }

    def _start(self, args: list[str], extra_env: dict[str, str] | None = None) -> None:
        metrics = free_port()
        command = [
            RAY, "start", *args, "--node-ip-address=127.0.0.1", f"--metrics-export-port={metrics}",
            f"--dashboard-agent-listen-port={free_port()}", "--disable-usage-stats",
        ]
        process = subprocess.Popen(command, env=self.env(extra_env), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.sessions.add(process.pid)
        output, _ = process.communicate(timeout=180)
        self.log.append(output)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{output[-3000:]}")
        self.metrics_ports.append(metrics)

    def start_head(self, num_cpus: int, resources: dict[str, float], *, object_store_bytes: int = 200_000_000,
                   extra_args: Sequence[str] = (), extra_env: dict[str, str] | None = None) -> None:
        self._start([
            "--head", f"--port={self.gcs_port}", f"--num-cpus={num_cpus}", "--num-gpus=0",
            f"--resources={json.dumps(resources)}", f"--object-store-memory={object_store_bytes}",
            f"--temp-dir={self.temp_dir}", "--include-dashboard=true",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
            f"--ray-client-server-port={free_port()}", *extra_args,
        ], extra_env)

    def add_node(self, num_cpus: int, resources: dict[str, float], *, object_store_bytes: int = 200_000_000) -> None:
        # A temp dir of its own, as on a separate machine: nodes sharing one would unpack job
        # packages into the same folder, and one node's runtime-env agent would replace the
        # folder another node's job is running in.
        self._start([f"--address={self.address}", f"--num-cpus={num_cpus}", "--num-gpus=0",
                     f"--resources={json.dumps(resources)}", f"--object-store-memory={object_store_bytes}",
                     f"--temp-dir={self.temp_dir / f'n{len(self.sessions)}'}"])

    def processes(self) -> list[str]:
        return [f"{pid} {command}" for pid, command in session_processes(self.sessions).items()]

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM every process of the nodes' sessions (nodes an autoscaler started included),
        then SIGKILL what is left, until none is; then remove the temp dir."""
        for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGKILL):
            for pid in session_processes(self.sessions):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace_s
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not self.processes():
                break
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def submit(self, working_dir: Path, runtime_env: dict[str, Any], entrypoint: list[str],
               submission_id: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
        """`ray job submit --working-dir ... --runtime-env-json ...`, waiting for the job's end."""
        command = [
            RAY, "job", "submit", f"--address={self.dashboard_url}", f"--submission-id={submission_id}",
            f"--working-dir={working_dir}", f"--runtime-env-json={json.dumps(runtime_env)}", "--", *entrypoint,
        ]
        return subprocess.run(command, env=self.env(), capture_output=True, text=True, timeout=timeout, check=False)

    def scrape(self) -> dict[str, float]:
        """Every node's Prometheus endpoint: the largest value of each metric name."""
        values: dict[str, float] = {}
        for port in self.metrics_ports:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except OSError:
                continue
            for match in re.finditer(r"^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)$", text, re.MULTILINE):
                try:
                    value = float(match.group(2))
                except ValueError:
                    continue
                values[match.group(1)] = max(values.get(match.group(1), value), value)
        return values

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
