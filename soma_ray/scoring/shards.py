"""Splitting a plan's models into shards that fit one scoring actor's device memory (issue 14).

Each shard is one stage of the pool: its actors keep exactly the shard's models resident for the
whole epoch, so no batch ever reloads a model. A shard is sized from the models' byte sizes (the
manifest's size: encrypted weights are the safetensors file, i.e. the float32 parameter bytes plus
a small header) plus an activation reserve; `scoring.models_per_actor` overrides the estimate.
Pure: no torch, no Ray (`device_memory_bytes` imports torch only when asked to look).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from soma_ray.cluster_reach import unmet_demand
from soma_ray.errors import InputError

GIB = 1 << 30
# Memory assumed per actor when scoring on CPU and `scoring.device_memory_gb` is unset.
CPU_DEVICE_MEMORY_GB = 16.0


class ShardError(InputError):
    """A model cannot fit one actor, in one line naming the fix."""


@dataclass(frozen=True)
class Shard:
    """One stage's models: their ids and their column in the plan's sorted model list."""

    index: int
    model_ids: tuple[str, ...]
    columns: tuple[int, ...]


def plan_shards(
    model_ids: Sequence[str],
    sizes: Mapping[str, int],
    *,
    device_bytes: int,
    reserve_bytes: int,
    models_per_actor: int | None = None,
) -> list[Shard]:
    """Consecutive runs of the sorted model ids, each fitting `device_bytes - reserve_bytes`.

    Greedy in sorted order, so the same plan always gives the same shards. `models_per_actor`
    (when set) fixes the shard size instead of the memory estimate. No models, no shards.
    """
    ordered = sorted(model_ids)
    column = {m: j for j, m in enumerate(ordered)}
    groups: list[list[str]] = []
    if models_per_actor is not None:
        if models_per_actor < 1:
            raise ShardError(f"scoring.models_per_actor must be at least 1, got {models_per_actor}")
        groups = [ordered[i : i + models_per_actor] for i in range(0, len(ordered), models_per_actor)]
    else:
        room = device_bytes - reserve_bytes
        used = 0
        for model_id in ordered:
            size = int(sizes[model_id])
            if size > room:
                raise ShardError(
                    f"model {model_id} needs {size / GIB:.2f} GiB but one scoring actor has "
                    f"{device_bytes / GIB:.2f} GiB minus a {reserve_bytes / GIB:.2f} GiB activation reserve; "
                    "raise scoring.device_memory_gb (or num_gpus_per_actor), lower "
                    "scoring.activation_reserve_gb, or set scoring.models_per_actor"
                )
            if not groups or used + size > room:
                groups.append([])
                used = 0
            groups[-1].append(model_id)
            used += size
    return [Shard(i, tuple(g), tuple(column[m] for m in g)) for i, g in enumerate(groups)]


def device_memory_bytes(device_memory_gb: float | None, num_gpus_per_actor: float) -> int:
    """One actor's memory: as configured, else its share of this process's GPU 0, else a CPU default.

    The pool is planned in the driver; set `scoring.device_memory_gb` when the driver's node has no
    GPU (or another one) than the scoring nodes.
    """
    if device_memory_gb is not None:
        return int(device_memory_gb * GIB)
    if num_gpus_per_actor > 0:
        import torch

        if torch.cuda.is_available():
            total = int(torch.cuda.get_device_properties(0).total_memory)
            return int(total * min(num_gpus_per_actor, 1.0))
    return int(CPU_DEVICE_MEMORY_GB * GIB)


def resident_models(limit: int | None, shard: Shard) -> int:
    """Models one actor keeps loaded: its whole shard unless `scoring.max_resident_models` is lower."""
    whole = max(1, len(shard.model_ids))
    return whole if limit is None else max(1, min(limit, whole))


def stage_demand(
    stages: int, min_actors: int, num_cpus: float, num_gpus: float, custom: Mapping[str, float], read_cpus: float
) -> dict[str, float]:
    """What the pool holds at once: every stage starts its `min_actors` before any sample flows
    (Ray Data's actor pools), plus the read task."""
    actors = stages * min_actors
    demand = {"CPU": actors * num_cpus + read_cpus, "GPU": actors * num_gpus}
    for name, amount in custom.items():
        demand[name] = demand.get(name, 0.0) + actors * amount
    return {name: amount for name, amount in demand.items() if amount > 0}


def fit_error(stages: int, min_actors: int, unmet: Mapping[str, tuple[float, float]], *,
              grown: bool = False) -> ShardError:
    """One line: what the stages need, what the cluster has (or, `grown`, the most its autoscaler
    can start), and the fixes."""
    has = "the cluster's node types reach" if grown else "the cluster has"
    short = ", ".join(f"{need:g} {name} ({has} {have:g})" for name, (need, have) in sorted(unmet.items()))
    return ShardError(
        f"scoring needs {stages} stage(s) × {min_actors} actor(s) running at once: {short}; lower "
        "scoring.min_actors or scoring.num_cpus_per_actor / num_gpus_per_actor, raise scoring.models_per_actor "
        "(fewer stages), " + ("raise max_workers in the cluster config" if grown else
                              "add nodes, or set scoring.autoscaling: true if the cluster adds nodes on demand")
    )


def wait_for_nodes(stages: int, min_actors: int, demand: Mapping[str, float], now: Mapping[str, float],
                   reach: Mapping[str, float] | None, *, autoscaling: bool) -> str | None:
    """None when the stages fit the cluster now; a line to log when they wait for nodes an
    autoscaler will start; else the `fit_error` raised. `reach` is the most the cluster's autoscaler
    may grow it to (its node types up to their max_workers): known, it decides; unknown (None), the recipe's
    `scoring.autoscaling` says whether nodes will come."""
    unmet = unmet_demand(demand, now)
    if not unmet:
        return None
    if reach is not None:
        beyond = unmet_demand(demand, reach)
        if beyond:
            raise fit_error(stages, min_actors, beyond, grown=True)
        return f"waiting for the autoscaler's nodes (its node types can start them): {fit_error(stages, min_actors, unmet)}"
    if not autoscaling:
        raise fit_error(stages, min_actors, unmet)
    return f"waiting for the autoscaler: {fit_error(stages, min_actors, unmet)}"
