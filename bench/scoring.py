"""Benchmark: the soma-ray scoring pool against an official-style scorer, same data, same models.

(a) pool      — `soma_ray.scoring.pool.score_stream` on a local Ray cluster: a JSONL file streamed
                through an actor pool; each actor downloads the encrypted weights once (local HTTP
                server → disk cache), decrypts them and keeps every model resident.
(b) official  — what the official scoring service does per request (protocol.md §1.2), one
                request at a time in one process: for each sample and each of the target's models,
                re-read the encrypted weights file, verify size + Blake2b-256, decrypt, build a fresh
                model, score that one sample; then pick the winner.

Both use `soma_ray.scoring.evaluate` (same math), so their losses must agree; the script checks it.

    .venv/bin/python bench/scoring.py                       # CPU default, ~1.5 min on 2 cores
    .venv/bin/python bench/scoring.py --full-v1 --device cuda --peak-tflops 495 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from official import EncryptedWeights, load_like_official, write_encrypted
from soma_models.v1.torch import Model, ModelConfig

from soma_ray.chain.types import Manifest, Target, TargetStatus
from soma_ray.protocol.constants import MAX_SEQ_LEN
from soma_ray.scoring.evaluate import evaluate
from soma_ray.scoring.pool import READ_TASK_CPUS
from soma_ray.scoring.select import select
from soma_ray.training.flops import forward_flops_per_token, mfu, parameter_count

# Ray on these machines (design.md): loopback only, no auth token, no usage stats.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SCORING_SEED = 0  # the protocol's scoring seed (§1.1); --seed only drives data and weights
V1 = {"width": 2048, "layers": 24, "heads": 8, "ff": 8192}


def log(message: str) -> None:
    """Progress goes to stderr; the table goes to stdout."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Scored tokens/s of the soma-ray pool (a) vs an official-style per-request scorer (b).",
    )
    shape = p.add_argument_group("model shape (random weights)")
    shape.add_argument("--width", type=int, default=64, help="embedding dim (default 64)")
    shape.add_argument("--layers", type=int, default=2, help="default 2")
    shape.add_argument("--heads", type=int, default=4, help="default 4")
    shape.add_argument("--ff", type=int, default=None, help="feed-forward hidden dim (default 4×width)")
    shape.add_argument("--models", type=int, default=3, help="models per target (default 3)")
    shape.add_argument("--full-v1", action="store_true",
                       help="V1 preset for a GPU machine: shape 2048/24/8/8192 (overrides the four flags above), "
                            "256 samples, 3 of them for (b), unless given")
    data = p.add_argument_group("data")
    data.add_argument("--samples", type=int, default=None, help="samples scored by the pool (default 192)")
    data.add_argument("--sample-bytes", default="1024..8192",
                      help="sizes: 'MIN..MAX' (uniform) or a comma list cycled over the samples (default 1024..8192)")
    data.add_argument("--official-samples", type=int, default=None,
                      help="score only the first K samples on path (b) (default all; rates are per second)")
    data.add_argument("--seed", type=int, default=0, help="seed for data, weights and target (default 0)")
    pool = p.add_argument_group("pool (a)")
    pool.add_argument("--actors", type=int, default=None, help="actors (default: CPU count on cpu, 1 on cuda)")
    pool.add_argument("--cpus-per-actor", type=float, default=None,
                      help="default (CPUs − READ_TASK_CPUS) / actors: the pool's read task reserves a share of a CPU")
    pool.add_argument("--gpus-per-actor", type=float, default=None, help="default: 1/actors on cuda, 0 on cpu")
    pool.add_argument("--rows-per-forward", type=int, default=None,
                      help="1024-token chunks per forward pass (default 16; SIGReg sizes its CPU blocks to the cache)")
    pool.add_argument("--batch-samples", type=int, default=None, help="samples per actor call (default 8 on cpu, 32 on cuda)")
    pool.add_argument("--precision", choices=["float32", "bf16-prefilter"], default="float32", help="default float32")
    pool.add_argument("--target-threshold", type=float, default=2.0,
                      help="distance threshold of the bench target (bf16-prefilter only; 2.0 keeps every sample)")
    run = p.add_argument_group("run")
    run.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="default cpu")
    run.add_argument("--peak-tflops", type=float, default=None,
                     help="device peak for MFU, e.g. 495 (H100 SXM TF32 dense); default: MFU not printed")
    run.add_argument("--rtol", type=float, default=1e-5,
                     help="relative tolerance of the loss agreement check (default 1e-5)")
    run.add_argument("--skip-official", action="store_true", help="run the pool only")
    run.add_argument("--workdir", type=Path, default=None, help="where temp files go (default: system temp)")
    run.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the figures as JSON")
    args = p.parse_args(argv)
    apply_defaults(args, p)
    return args


def apply_defaults(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """Fill the defaults that depend on other flags; reject impossible combinations."""
    if args.full_v1:
        for name, value in V1.items():
            setattr(args, name, value)
        args.samples = args.samples or 256
        args.official_samples = args.official_samples or 3  # each request reloads 3 × 4.8 GB
    args.ff = args.ff or 4 * args.width
    args.samples = args.samples or 192
    args.rows_per_forward = args.rows_per_forward or 16
    args.batch_samples = args.batch_samples or (32 if args.device == "cuda" else 8)
    cpus = os.cpu_count() or 1
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device visible to torch")
    args.actors = args.actors or (1 if args.device == "cuda" else cpus)
    # The pool's read task reserves READ_TASK_CPUS; the actors share the rest.
    args.cpus_per_actor = args.cpus_per_actor or (cpus - READ_TASK_CPUS) / args.actors
    if args.gpus_per_actor is None:
        args.gpus_per_actor = 1.0 / args.actors if args.device == "cuda" else 0.0
    if args.device == "cuda" and args.gpus_per_actor <= 0:
        p.error("--device cuda needs --gpus-per-actor > 0")
    if args.width % args.heads:
        p.error(f"--width {args.width} is not divisible by --heads {args.heads}")
    args.sizes = sample_sizes(args.sample_bytes, args.samples, args.seed, p)
    n_official = args.samples if args.official_samples is None else args.official_samples
    args.official_samples = max(1, min(n_official, args.samples))


def sample_sizes(spec: str, n: int, seed: int, p: argparse.ArgumentParser) -> list[int]:
    """'MIN..MAX' → n uniform sizes; 'a,b,c' → cycled. Sizes must be 1..1 MiB."""
    try:
        if ".." in spec:
            low, high = (int(x) for x in spec.split(".."))
            sizes = np.random.default_rng(seed).integers(low, high, endpoint=True, size=n).tolist()
        else:
            listed = [int(x) for x in spec.split(",") if x.strip()]
            sizes = [listed[i % len(listed)] for i in range(n)]
    except ValueError:
        p.error(f"--sample-bytes {spec!r}: give 'MIN..MAX' or a comma list of integers")
    if not sizes or min(sizes) < 1 or max(sizes) > 1_048_576:
        p.error("--sample-bytes: sizes must be between 1 and 1,048,576 bytes")
    return [int(s) for s in sizes]


# -- inputs: samples, models, a target ---------------------------------------------------------


@dataclass(frozen=True)
class ModelBlob:
    """One model's encrypted weights on disk and the manifest pointing at them over HTTP."""

    model_id: str
    weights: EncryptedWeights
    manifest: Manifest


def model_kwargs(args: argparse.Namespace) -> dict[str, int]:
    return {"embedding_dim": args.width, "pwff_hidden_dim": args.ff, "num_layers": args.layers,
            "num_heads": args.heads}


def make_samples(sizes: Sequence[int], seed: int) -> list[bytes]:
    """Printable ASCII text with newlines (round-trips exactly through JSONL)."""
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789()[]{}=+-*/_.,:;\n", dtype=np.uint8)
    return [alphabet[rng.integers(0, len(alphabet), size=n)].tobytes() for n in sizes]


def write_jsonl(samples: Sequence[bytes], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for data in samples:
            out.write(json.dumps({"text": data.decode("ascii")}) + "\n")


def make_models(args: argparse.Namespace, blob_dir: Path, base_url: str) -> list[ModelBlob]:
    """Random weights per model (torch.manual_seed), saved, encrypted with a fresh key, written."""
    config = ModelConfig(dropout_rate=0.0, **model_kwargs(args))
    blobs = []
    for i in range(args.models):
        torch.manual_seed(args.seed * 1000 + i)
        plain = Model(config).save_bytes()
        model_id = f"model-{i:02d}"  # zero-padded: the pool orders its columns by sorted id
        weights = write_encrypted(plain, blob_dir / "weights" / f"{model_id}.bin")
        del plain
        manifest = Manifest(url=f"{base_url}/weights/{weights.path.name}", checksum=weights.checksum,
                            size=weights.size, decryption_key=weights.key)
        blobs.append(ModelBlob(model_id, weights, manifest))
        log(f"model {model_id}: {weights.size / 2**20:.1f} MiB encrypted")
    return blobs


def make_target(args: argparse.Namespace, blobs: Sequence[ModelBlob]) -> Target:
    rng = np.random.default_rng(args.seed + 1)
    return Target(id="bench-target", status=TargetStatus.OPEN,
                  embedding=rng.standard_normal(args.width).astype(np.float32),
                  model_ids=[b.model_id for b in blobs], distance_threshold=args.target_threshold,
                  reward_pool=0, generation_epoch=0)


def chunk_count(data: bytes) -> int:
    return -(-len(data) // MAX_SEQ_LEN)


# -- figures ---------------------------------------------------------------------------------


@dataclass
class PathResult:
    """What one path measured; losses[i, j] = sample i, model j (NaN where not scored)."""

    name: str
    samples: int
    chunks: int
    models: int
    seconds: float
    peak_rss_mib: float
    losses: np.ndarray = field(repr=False)
    winners: list[int] = field(repr=False)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.chunks * MAX_SEQ_LEN * self.models / self.seconds

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds

    def summary(self) -> dict[str, Any]:
        return {"samples": self.samples, "chunks": self.chunks, "models": self.models,
                "seconds": self.seconds, "tokens_per_s": self.tokens_per_s, "samples_per_s": self.samples_per_s,
                "peak_rss_mib": self.peak_rss_mib, **self.notes}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- (b) official-style, one request at a time --------------------------------------------------


@dataclass(frozen=True)
class OfficialJob:
    blobs: list[ModelBlob]
    samples: list[bytes]
    model_kwargs: dict[str, int]
    target_embedding: np.ndarray
    device: str


def run_official(job: OfficialJob) -> dict[str, Any]:
    """The request loop; runs in a fresh process so its peak RSS is its own."""
    device = torch.device(job.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # as the pool's actors and the official CUDA scorer
        torch.backends.cudnn.allow_tf32 = True
    config = ModelConfig(dropout_rate=0.0, **job.model_kwargs)
    losses = np.full((len(job.samples), len(job.blobs)), np.nan)
    winners, load_s, eval_s = [], 0.0, 0.0
    start = time.perf_counter()
    for i, data in enumerate(job.samples):
        evaluations = []
        for blob in job.blobs:
            t0 = time.perf_counter()
            model = load_like_official(blob.weights, config, device)
            t1 = time.perf_counter()
            evaluations.append(evaluate(model, [data], SCORING_SEED)[0])  # fresh SIGReg noise per request
            load_s, eval_s = load_s + t1 - t0, eval_s + time.perf_counter() - t1
            del model
        winners.append(select(evaluations, job.target_embedding)[0])
        losses[i] = [e.loss for e in evaluations]
    seconds = time.perf_counter() - start
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return {"seconds": seconds, "losses": losses, "winners": winners, "peak_rss_mib": peak_rss_mib(),
            "load_s": load_s, "eval_s": eval_s, "threads": torch.get_num_threads(), "gpu_peak_mib": gpu_peak}


def measure_official(args: argparse.Namespace, blobs: list[ModelBlob], samples: list[bytes],
                     target: Target) -> PathResult:
    chosen = samples[: args.official_samples]
    job = OfficialJob(blobs, chosen, model_kwargs(args), target.embedding, args.device)
    log(f"(b) official-style: {len(chosen)} samples × {len(blobs)} models, one request at a time")
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        out = pool.submit(run_official, job).result()
    notes = {"load_s": out["load_s"], "eval_s": out["eval_s"], "torch_threads": out["threads"]}
    if out["gpu_peak_mib"] is not None:
        notes["gpu_peak_mib"] = out["gpu_peak_mib"]
    return PathResult("(b) official-style", len(chosen), sum(map(chunk_count, chosen)), len(blobs),
                      out["seconds"], out["peak_rss_mib"], out["losses"], out["winners"], notes)


# -- (a) the Ray pool ---------------------------------------------------------------------------


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


def start_ray(args: argparse.Namespace) -> float:
    """A local Ray cluster on every core, with Ray Data's per-session helper actors started by a
    tiny dataset (as in a long-running job, where they outlive each pipeline). Returns the seconds."""
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), num_gpus=torch.cuda.device_count() if args.device == "cuda" else 0,
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


def pool_batches(args: argparse.Namespace, blobs: list[ModelBlob], target: Target, data_path: Path,
                 cache_dir: Path, max_bytes: int) -> Iterator[dict[str, np.ndarray]]:
    from soma_ray.data.config import DataConfig
    from soma_ray.scoring.config import ScoringSection
    from soma_ray.scoring.pool import ScoringPlan, score_stream

    data = DataConfig(source="jsonl", path=data_path, field="text", dedup=False, max_bytes=max_bytes)
    plan = ScoringPlan(model_config=model_kwargs(args), manifests={b.model_id: b.manifest for b in blobs},
                       targets=[target], seed=SCORING_SEED)
    settings = ScoringSection(
        min_actors=args.actors, max_actors=args.actors, num_gpus_per_actor=args.gpus_per_actor,
        num_cpus_per_actor=args.cpus_per_actor, batch_samples=args.batch_samples, rows_per_forward=args.rows_per_forward,
        precision=args.precision, max_resident_models=len(blobs), cache_dir=cache_dir,
    )
    return score_stream(data, plan, settings)


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
            start: float) -> tuple[np.ndarray, list[Arrival]]:
    """Drain the pool's stream: losses[sample_id, model] and when each batch arrived."""
    losses = np.full((len(samples), models), np.nan)
    arrivals: list[Arrival] = []
    for batch in batches:
        at = time.perf_counter() - start
        ids = batch["sample_id"].tolist()
        for row, sid in enumerate(ids):
            assert bytes(batch["data"][row]) == samples[sid], "pool returned a sample out of place"
            losses[sid] = batch["losses"][row]
        arrivals.append(Arrival(at, sum(chunk_count(samples[s]) for s in ids)))
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


def measure_pool(args: argparse.Namespace, blobs: list[ModelBlob], samples: list[bytes], target: Target,
                 workdir: Path) -> PathResult:
    import ray

    data_path = workdir / "samples.jsonl"
    write_jsonl(samples, data_path)
    ray_init_s = start_ray(args)
    log(f"(a) pool: ray.init + Ray Data start {ray_init_s:.1f} s; {args.actors} actor(s) × {args.cpus_per_actor:g} CPU"
        f"{f' × {args.gpus_per_actor:g} GPU' if args.gpus_per_actor else ''}, {len(samples)} samples")
    try:
        with RssSampler() as rss:
            start = time.perf_counter()  # the stream starts (plans, starts actors) on the first request
            batches = pool_batches(args, blobs, target, data_path, workdir / "model-cache", max(args.sizes))
            losses, arrivals = consume(batches, samples, len(blobs), start)
            seconds = time.perf_counter() - start
    finally:
        ray.shutdown()
    actor_rss = [v / 2**20 for v in rss.actor_peaks.values()]
    notes = {
        "ray_init_s": ray_init_s,
        **timing_notes(arrivals, args.actors, len(blobs)),
        "actor_peak_rss_mib": actor_rss,
        "driver_peak_rss_mib": rss.driver_peak / 2**20,
        "cpu_seconds": rss.cpu_seconds(),
        "f32_scored_samples": int(np.isfinite(losses).all(axis=1).sum()),
    }
    winners = [int(np.argmin(row)) if np.isfinite(row).all() else -1 for row in losses]
    return PathResult(f"(a) pool, {args.actors} actor(s)", len(samples), sum(map(chunk_count, samples)), len(blobs),
                      seconds, max(actor_rss, default=math.nan), losses, winners, notes)


# -- comparison and report ----------------------------------------------------------------------


@dataclass
class Agreement:
    pairs: int
    max_rel: float
    winners_equal: int
    winners_compared: int
    ok: bool


def compare(a: PathResult, b: PathResult, rtol: float) -> Agreement:
    """Losses per (sample, model) on the samples both paths scored in float32, and the winners."""
    n = min(len(a.losses), len(b.losses))
    la, lb = a.losses[:n], b.losses[:n]
    both = np.isfinite(la) & np.isfinite(lb)
    rel = np.abs(la - lb)[both] / np.maximum(np.abs(lb[both]), 1e-30)
    max_rel = float(rel.max()) if rel.size else math.nan
    rows = [i for i in range(n) if both[i].all()]
    same = sum(a.winners[i] == b.winners[i] for i in rows)
    ok = bool(rel.size) and max_rel <= rtol and same == len(rows)
    return Agreement(int(both.sum()), max_rel, same, len(rows), ok)


def fmt_mib(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f} MiB"


def table_rows(a: PathResult, b: PathResult | None) -> list[tuple[str, float, float, float, str]]:
    """(path, seconds, samples/s, tokens/s, peak memory) per line of the table."""
    actors = a.notes["actor_peak_rss_mib"]
    steady = a.notes["steady_tokens_per_s"]
    tokens_per_sample = a.chunks * MAX_SEQ_LEN * a.models / a.samples
    rows = [
        (a.name, a.seconds, a.samples_per_s, a.tokens_per_s,
         f"actors (sampled): max {fmt_mib(max(actors, default=math.nan))}, sum {fmt_mib(sum(actors or [math.nan]))}"),
        ("  steady state, after warm-up", math.nan, steady / tokens_per_sample, steady,
         f"driver: {fmt_mib(a.notes['driver_peak_rss_mib'])}"),
    ]
    if b is not None:
        rows.append((b.name, b.seconds, b.samples_per_s, b.tokens_per_s, f"process: {fmt_mib(b.peak_rss_mib)}"))
    return rows


def print_report(args: argparse.Namespace, a: PathResult, b: PathResult | None, agreement: Agreement | None,
                 flops: float, params: int) -> None:
    show_mfu = args.device == "cuda" and args.peak_tflops is not None
    print(f"\nmodels: {args.models} × (width {args.width}, {args.layers} layers, {args.heads} heads, ff {args.ff}; "
          f"{params:,} params), random weights, encrypted")
    print(f"data:   {a.samples} samples of {min(args.sizes)}..{max(args.sizes)} bytes = {a.chunks} chunks; "
          f"(b) scores the first {b.samples if b else 0}")
    print(f"pool:   {args.actors} actor(s) × {args.cpus_per_actor:g} CPU × {args.gpus_per_actor:g} GPU, "
          f"torch threads {max(1, math.floor(args.cpus_per_actor))} each (Ray: OMP_NUM_THREADS = ⌊CPUs⌋ ≥ 1); "
          f"batch {args.batch_samples} samples; "
          f"{args.rows_per_forward} rows/forward; {args.precision}; device {args.device}")
    print(f"FLOPs/token assumed: 2·(params − embedding) + 4·layers·1024·width = {flops / 1e9:.4g} GFLOP "
          "(forward only; SIGReg, softmax, norms excluded)")
    header = f"{'path':<30}{'seconds':>9}{'samples/s':>11}{'tokens/s':>12}   {'peak RSS'}"
    print("\n" + header)
    print("-" * 100)
    for name, secs, sps, tps, mem in table_rows(a, b):
        shown_secs = "" if math.isnan(secs) else f"{secs:.2f}"
        extra = f"   MFU {mfu(tps, flops, 1, args.peak_tflops) or 0.0:.1%}" if show_mfu else ""
        print(f"{name:<30}{shown_secs:>9}{sps:>11.2f}{tps:>12,.0f}   {mem}{extra}")
    print(f"\n(a) ray.init + Ray Data start {a.notes['ray_init_s']:.1f} s (not counted); first batch after {a.notes['first_batch_s']:.1f} s; "
          f"warm-up (pool start + model download/load) ≈ {a.notes['warmup_s']:.1f} s; steady state over "
          f"{a.notes['steady_batches']} of {a.notes['batches']} batches")
    cpu = ", ".join(f"{kind} {sec:.1f}" for kind, sec in a.notes["cpu_seconds"].items())
    print(f"(a) CPU seconds while streaming ({a.seconds:.1f} s × {os.cpu_count()} CPUs): {cpu}")
    if args.precision == "bf16-prefilter":
        print(f"(a) the bf16 pre-filter kept {a.notes['f32_scored_samples']}/{a.samples} samples for float32")
    if b is not None:
        share = b.notes["load_s"] / (b.notes["load_s"] + b.notes["eval_s"])
        print(f"(b) read+verify+decrypt+build {b.notes['load_s']:.2f} s ({share:.0%}), evaluate "
              f"{b.notes['eval_s']:.2f} s; torch threads {b.notes['torch_threads']}")
        print(f"\nratio (a)/(b) scored tokens/s: {a.tokens_per_s / b.tokens_per_s:.2f}× "
              f"(steady state: {a.notes['steady_tokens_per_s'] / b.tokens_per_s:.2f}×)")
    if agreement is not None:
        print(f"results agree: {'yes' if agreement.ok else 'no'} (max relative loss difference "
              f"{agreement.max_rel:.2e} over {agreement.pairs} (sample, model) pairs, rtol {args.rtol:g}; "
              f"winners equal {agreement.winners_equal}/{agreement.winners_compared})")
    sys.stdout.flush()  # before the stderr lines that follow


def write_json(path: Path, args: argparse.Namespace, a: PathResult, b: PathResult | None,
               agreement: Agreement | None, flops: float, params: int) -> None:
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "sizes"}
    out: dict[str, Any] = {
        "config": config,
        "environment": {"torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
                        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
                        "loadavg": os.getloadavg()},
        "params": params, "flops_per_token": flops,
        "pool": a.summary(),
        "official": b.summary() if b else None,
        "ratio_tokens_per_s": a.tokens_per_s / b.tokens_per_s if b else None,
        "agreement": asdict(agreement) if agreement else None,
    }
    if args.device == "cuda" and args.peak_tflops is not None:
        out["mfu"] = {"pool": mfu(a.tokens_per_s, flops, 1, args.peak_tflops),
                      "pool_steady": mfu(a.notes["steady_tokens_per_s"], flops, 1, args.peak_tflops),
                      "official": mfu(b.tokens_per_s, flops, 1, args.peak_tflops) if b else None}
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")
    log(f"figures written to {path}")


# -- main ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from soma_ray.storage import BlobHTTPServer

    log(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="soma-bench-", dir=args.workdir) as tmp:
        workdir = Path(tmp)
        blob_dir = workdir / "blobs"
        blob_dir.mkdir()
        with BlobHTTPServer(blob_dir) as server:
            blobs = make_models(args, blob_dir, server.url)
            samples = make_samples(args.sizes, args.seed)
            target = make_target(args, blobs)
            official = None if args.skip_official else measure_official(args, blobs, samples, target)
            pool = measure_pool(args, blobs, samples, target, workdir)
    # Forward FLOPs per token (one device; MFU against --peak-tflops): 2·(params − embedding) for
    # the matmuls + 4·layers·1024·width for QKᵀ and A·V over the full square. V1: 2.62e9.
    params = parameter_count(args.width, args.ff, args.layers)
    flops = forward_flops_per_token(args.width, args.ff, args.layers)
    agreement = compare(pool, official, args.rtol) if official else None
    print_report(args, pool, official, agreement, flops, params)
    log(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        write_json(args.json, args, pool, official, agreement, flops, params)
    return 0 if agreement is None or agreement.ok else 1


if __name__ == "__main__":
    sys.exit(main())
