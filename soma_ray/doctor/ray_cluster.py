"""The Ray cluster a job would join, and whether it has the resources the recipe asks for.

A job joins RAY_ADDRESS, else the cluster `ray start` recorded on this machine, else starts a
local Ray (soma_ray.runtime.ensure_ray). The doctor never starts one: without a cluster it says
what the job will do. `resource_checks` works on a plain dict, so it is testable without Ray.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from soma_ray.cluster_reach import autoscaler_reach, unmet_demand
from soma_ray.doctor.result import Check, Level, fail, info, ok

CUSTOM_HINTS = {
    "scorer": "scoring nodes (cluster/aws.yaml, gcp.yaml, kuberay: `scorer: 1` each)",
    "trainer": "training nodes (cluster/*.yaml: `trainer: 8` each)",
}


def recorded_address(environ: Mapping[str, str]) -> tuple[str | None, str]:
    """(address, where it came from): RAY_ADDRESS, else the file `ray start` writes, else None."""
    if environ.get("RAY_ADDRESS"):
        return environ["RAY_ADDRESS"], "RAY_ADDRESS"
    temp = environ.get("RAY_TMPDIR") or environ.get("TMPDIR") or "/tmp"
    marker = Path(temp) / "ray" / "ray_current_cluster"
    try:
        text = marker.read_text().strip()
    except OSError:
        return None, str(marker)
    return (text or None), str(marker)


def answers(address: str, timeout: float = 2.0) -> bool:
    """Whether the cluster's GCS accepts a TCP connection (a recorded cluster may be long gone)."""
    if address.startswith("ray://") or address in ("auto", "local"):
        return True  # a Ray Client address or a keyword: let Ray itself decide
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def resource_checks(total: Mapping[str, float], wanted: Mapping[str, float], where: str,
                    most: Mapping[str, float] | None = None) -> list[Check]:
    """One line per resource the recipe asks for that the cluster lacks; one ok line otherwise.
    `most` is what the cluster's autoscaler may grow to (None: no autoscaler told Ray): a resource
    short now but within it is worth knowing, not a failure (the job waits for the nodes)."""
    have = f"{where}: {int(total.get('CPU', 0))} CPU, {int(total.get('GPU', 0))} GPU" + "".join(
        f", {name} {total[name]:g}" for name in sorted(total) if name in CUSTOM_HINTS
    )
    short = unmet_demand(wanted, total)
    reach = most or {}
    beyond = short if most is None else unmet_demand(wanted, most)
    checks = []
    for name, (amount, now) in sorted(short.items()):
        if name not in beyond:
            checks.append(info("ray resources", f"the recipe asks for {name}: {amount:g} at once, the cluster has "
                               f"{now:g} now and its autoscaler may add up to {reach.get(name, 0.0):g}: the job "
                               "waits for those nodes to start"))
            continue
        largest = "" if most is None else f" (its autoscaler's node types reach {reach.get(name, 0.0):g})"
        checks.append(fail("ray resources", f"the recipe asks for {name}: {amount:g} at once, the cluster has "
                           f"{now:g}{largest}; add {CUSTOM_HINTS.get(name, 'nodes with it')} or lower the recipe's "
                           "request"))
    if any(c.level is Level.FAIL for c in checks):
        return checks
    enough = f" (enough for {_fmt(wanted)}{' once scaled up' if checks else ''})" if wanted else ""
    return [ok("ray resources", have + enough), *checks]


def _fmt(resources: Mapping[str, float]) -> str:
    return ", ".join(f"{k}: {v:g}" for k, v in sorted(resources.items()))


def _totals(home: Path) -> tuple[dict[str, float], dict[str, float] | None]:
    """The cluster's resources now, and the most its autoscaler may grow them to (None: unknown)."""
    import ray

    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return {k: float(v) for k, v in resources.items()}, autoscaler_reach(home)


def cluster_resources(address: str, home: Path) -> tuple[dict[str, float], dict[str, float] | None]:
    """The cluster's total resources, and the most it may grow to. Joins it as a driver only for
    this (or uses the Ray this process already joined) and leaves again."""
    import ray

    if ray.is_initialized():
        return _totals(home)
    ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    try:
        return _totals(home)
    finally:
        ray.shutdown()


def ray_checks(wanted: Mapping[str, float], *, needed: bool, environ: Mapping[str, str] = os.environ) -> list[Check]:
    if not needed:
        return [info("ray", "not used by this recipe")]
    try:
        import ray
    except ImportError:
        return [fail("ray", "ray is not installed; run `pip install -e .`")]
    home = Path(environ.get("HOME") or Path.home())  # where `ray up` leaves the cluster config on the head
    if ray.is_initialized():
        total, most = cluster_resources("auto", home)
        return resource_checks(total, wanted, "the Ray this process joined", most)
    address, source = recorded_address(environ)
    if address is None:
        local_cpus = os.cpu_count() or 1
        custom = {k: v for k, v in wanted.items() if k != "CPU"}
        if custom:
            return [fail("ray", f"no Ray cluster is running (no RAY_ADDRESS, nothing at {source}) and a local Ray has "
                         f"none of {_fmt(custom)}; start the cluster (docs/cluster.md) and set RAY_ADDRESS")]
        return [info("ray", f"no Ray cluster is running (no RAY_ADDRESS, nothing at {source}); "
                     f"the job starts a local Ray with this machine's {local_cpus} CPUs")]
    if not answers(address):
        return [fail("ray", f"the Ray cluster at {address} (from {source}) does not answer; "
                     "start it with `ray start --head`, or unset RAY_ADDRESS / run `ray stop` to use a local Ray")]
    try:
        total, most = cluster_resources(address, home)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds when it cannot join
        return [fail("ray", f"cannot join the Ray cluster at {address} (from {source}): "
                     f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; check that it runs this Ray version")]
    return resource_checks(total, wanted, f"cluster at {address}", most)
