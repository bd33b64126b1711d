"""The Ray pool's side of `bench/scoring.py`: one design of the pool, timed on a local Ray cluster.

Two designs run through the real `score_stream`:
- sharded — today's pool (issue 14): the models split into stages of `models_per_actor`, every
  actor keeping its stage's models resident, so each model loads once per actor;
- single-stage — the pool before issue 14: one stage scoring every model, each actor keeping at
  most `resident` models and evicting the rest LRU (`scoring.max_resident_models`), so with more
  models than that every batch reloads them.

Figures: time, the batches' arrival times (warm-up vs steady state), model loads per (actor, model)
from the stages' own counters (`LoadTally`), and the sampled RSS of every scoring actor.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import torch

from soma_ray.chain.types import Manifest, Target
from soma_ray.protocol.constants import MAX_SEQ_LEN
from soma_ray.scoring.loads import LoadTally
from soma_ray.scoring.pool import READ_TASK_CPUS

Design = Literal["sharded", "single-stage"]


@dataclass(frozen=True)
class Layout:
    """How one design places the scenario's models on the machine."""

    design: Design
    stages: int
    actors_per_stage: int
    cpus_per_actor: float
    gpus_per_actor: float
    models_per_actor: int
    resident: int  # models an actor keeps loaded

    def describe(self) -> str:
        gpu = f" × {self.gpus_per_actor:g} GPU" if self.gpus_per_actor else ""
        return (f"{self.stages} stage(s) × {self.actors_per_stage} actor(s) × {self.cpus_per_actor:.2g} CPU{gpu}, "
                f"{self.models_per_actor} model(s) per stage, {self.resident} resident per actor")


def layout_for(design: Design, models: int, *, device: str, models_per_actor: int, resident: int,
               actors: int | None, gpus_per_actor: float | None) -> Layout:
    """Every design gets the whole machine: on CPU all cores (less the read task's share), on
    CUDA all GPUs; the sharded design gives each stage its share, as separate GPUs would."""
    cpus = os.cpu_count() or 1
    gpus = torch.cuda.device_count() if device == "cuda" else 0
    if design == "sharded":
        stages, per_stage, keep = -(-models // models_per_actor), models_per_actor, models_per_actor
    else:
        stages, per_stage, keep = 1, models, resident
    per_stage_actors = actors or (max(1, cpus // stages) if device == "cpu" else 1)
    pool = stages * per_stage_actors
    gpu_share = gpus_per_actor if gpus_per_actor is not None else (gpus / pool if gpus else 0.0)
    return Layout(design, stages, per_stage_actors, (cpus - READ_TASK_CPUS) / pool, gpu_share,
                  min(per_stage, models), min(keep, per_stage, models))


@dataclass
class PoolRun:
    """What one design measured; losses[sample_id, model] (NaN where not scored)."""

    seconds: float
    losses: np.ndarray
    arrivals: list[Arrival]
    loads: LoadTally
    actor_peak_rss_mib: list[float]
    driver_peak_rss_mib: float
    cpu_seconds: dict[str, float]
    ray_init_s: float
    extra: dict[str, Any] = field(default_factory=dict)


class RssSampler:
    """Samples, until stopped, the RSS of this process and of its ScoringActor descendants (Ray workers),
    and the CPU seconds of every descendant, to show where the pool's CPU time goes."""

    def __init__(self, interval_s: float = 0.5) -> None:
        import psutil  # type: ignore[import-untyped]  # a Ray dependency

        self._me = psutil.Process()
        self._interval = interval_s
        self.actor_peaks: dict[int, int] = {}
        self.driver_peak = 0
        self._cpu: dict[int, tuple[str, float]] = {}  # pid → (kind, CPU seconds so far)
        self._start_cpu = self._cpu_s(self._me)
        self._base = {proc.pid: self._cpu_s(proc) for proc in self._me.children(recursive=True)}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @staticmethod
    def _cpu_s(proc: Any) -> float:
        times = proc.cpu_times()
        return float(times.user + times.system)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds while sampling: the driver, the scoring actors, every other Ray process."""
        out = {"driver": self._cpu_s(self._me) - self._start_cpu, "actors": 0.0, "other Ray processes": 0.0}
        for kind, seconds in self._cpu.values():
            out[kind] += seconds
        return out

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        import psutil

        self.driver_peak = max(self.driver_peak, self._me.memory_info().rss)
        for proc in self._me.children(recursive=True):
            try:
                actor = "ScoringActor" in " ".join(proc.cmdline())
                if actor:
                    self.actor_peaks[proc.pid] = max(self.actor_peaks.get(proc.pid, 0), proc.memory_info().rss)
                kind = self._cpu.get(proc.pid, ("other Ray processes", 0.0))[0]
                self._cpu[proc.pid] = ("actors" if actor else kind, self._cpu_s(proc) - self._base.get(proc.pid, 0.0))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue



def start_ray(device: str) -> float:
    """A local Ray cluster on every core, with Ray Data's per-session helper actors started by a
    tiny dataset (as in a long-running job, where they outlive each pipeline). Returns the seconds."""
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), num_gpus=torch.cuda.device_count() if device == "cuda" else 0,
             include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ray.data.range(1).materialize()
    return time.perf_counter() - start



@dataclass
class Arrival:
    at: float  # seconds since the first batch was requested
    chunks: int



def steady_state(arrivals: list[Arrival], actors: int) -> tuple[float, float, int]:
    """(seconds, chunks, batches) after every actor has delivered once, i.e. after warm-up.

    Needs at least `actors` batches after that point (else NaN): use more samples or smaller batches.
    """
    if len(arrivals) < 2 * actors:
        return math.nan, 0.0, 0
    skip = actors
    window = arrivals[-1].at - arrivals[skip - 1].at
    return window, float(sum(a.chunks for a in arrivals[skip:])), len(arrivals) - skip


def consume(batches: Iterator[dict[str, np.ndarray]], samples: list[bytes], models: int,
            start: float, loads: LoadTally) -> tuple[np.ndarray, list[Arrival]]:
    """Drain the pool's stream: losses[sample_id, model] and when each batch arrived."""
    losses = np.full((len(samples), models), np.nan)
    arrivals: list[Arrival] = []
    for batch in batches:
        at = time.perf_counter() - start
        loads.update(batch)
        ids = batch["sample_id"].tolist()
        for row, sid in enumerate(ids):
            assert bytes(batch["data"][row]) == samples[sid], "pool returned a sample out of place"
            losses[sid] = batch["losses"][row]
        arrivals.append(Arrival(at, sum(-(-len(samples[s]) // MAX_SEQ_LEN) for s in ids)))
    return losses, arrivals


def timing_notes(arrivals: list[Arrival], actors: int, models: int) -> dict[str, Any]:
    """First batch, warm-up (first batch minus one batch's compute) and the steady-state rate."""
    window, steady_chunks, steady_batches = steady_state(arrivals, actors)
    batch_s = window * actors / steady_batches if steady_batches else math.nan
    first = arrivals[0].at if arrivals else math.nan
    return {
        "first_batch_s": first,
        "warmup_s": first - batch_s,
        "steady_tokens_per_s": steady_chunks * MAX_SEQ_LEN * models / window if window > 0 else math.nan,
        "steady_batches": steady_batches,
        "batches": len(arrivals),
        "arrivals_s": [round(x.at, 3) for x in arrivals],
    }



def measure_pool(layout: Layout, *, model_config: dict[str, int], manifests: Mapping[str, Manifest], target: Target,
                 samples: list[bytes], data_path: Path, cache_dir: Path, batch_samples: int, rows_per_forward: int,
                 precision: str, device: str, seed: int) -> PoolRun:
    """Stream `samples` (already written to `data_path` as JSONL) through one design of the pool."""
    import ray

    from soma_ray.data.config import DataConfig
    from soma_ray.scoring.config import ScoringSection
    from soma_ray.scoring.pool import ScoringPlan, score_stream

    data = DataConfig(source="jsonl", path=data_path, field="text", dedup=False,
                      max_bytes=max(len(s) for s in samples))
    plan = ScoringPlan(model_config=model_config, manifests=dict(manifests), targets=[target], seed=seed)
    settings = ScoringSection(
        min_actors=layout.actors_per_stage, max_actors=layout.actors_per_stage,
        num_gpus_per_actor=layout.gpus_per_actor, num_cpus_per_actor=layout.cpus_per_actor,
        batch_samples=batch_samples, rows_per_forward=rows_per_forward, precision=precision,
        models_per_actor=layout.models_per_actor, max_resident_models=layout.resident, cache_dir=cache_dir,
    )
    ray_init_s = start_ray(device)
    loads = LoadTally()
    try:
        with RssSampler() as rss:
            start = time.perf_counter()  # the stream starts (plans, starts actors) on the first request
            losses, arrivals = consume(score_stream(data, plan, settings), samples, len(manifests), start, loads)
            seconds = time.perf_counter() - start
    finally:
        ray.shutdown()
    return PoolRun(seconds, losses, arrivals, loads, [v / 2**20 for v in rss.actor_peaks.values()],
                   rss.driver_peak / 2**20, rss.cpu_seconds(), ray_init_s)
