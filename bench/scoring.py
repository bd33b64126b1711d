"""Benchmark: scoring at the board's size. The sharded pool, the pool before it and an official-style
scorer run on the same data and the same models, for boards of several sizes (`--models 3,12,24`).

Designs (bench/README.md has the details):
- sharded       `score_stream` as it is: the models split into stages of `--models-per-actor`, each
                actor keeping its stage's models resident (each model loads once per actor);
- single-stage  the pool before issue 14: one stage scoring every model, each actor keeping at most
                `--resident` models and evicting LRU, so a board bigger than that reloads every batch;
- official      what the official scoring service does per request (protocol.md §1.2), one request
                at a time in one process: for each sample and each of the target's models, re-read
                the encrypted weights, verify size + Blake2b-256, decrypt, build, score; then select.

All use `soma_ray.scoring.evaluate` (same math), so their losses must agree; the script checks it
and exits 1 if they do not.

    .venv/bin/python bench/scoring.py                       # 3 models, width 64: ~2 min on 2 cores
    .venv/bin/python bench/scoring.py --models 3,12,24 --width 512 --layers 8 --samples 16 \\
        --sample-bytes 1024 --batch-samples 2 --official-samples 2 --json board.json
    .venv/bin/python bench/scoring.py --full-v1 --device cuda --models 3,12,24 --peak-tflops 495
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
from official import EncryptedWeights, load_like_official, write_encrypted
from scoring_pool import Design, Layout, PoolRun, layout_for, measure_pool, steady_state
from soma_models.v1.torch import Model, ModelConfig

from soma_ray.chain.types import Manifest, Target, TargetStatus
from soma_ray.protocol.constants import MAX_SEQ_LEN
from soma_ray.scoring.evaluate import evaluate
from soma_ray.scoring.select import select
from soma_ray.training.flops import forward_flops_per_token, mfu, parameter_count

# Ray on these machines (design.md): loopback only, no auth token, no usage stats.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SCORING_SEED = 0  # the protocol's scoring seed (§1.1); --seed only drives data and weights
V1 = {"width": 2048, "layers": 24, "heads": 8, "ff": 8192}


def log(message: str) -> None:
    """Progress goes to stderr; the tables go to stdout."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- command line -----------------------------------------------------------------------------

DESIGNS = ("sharded", "single-stage", "official")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Scoring throughput per (sample × model) for boards of several sizes: the sharded pool, "
                    "the single-stage pool before it, and an official-style per-request scorer.",
    )
    shape = p.add_argument_group("models (random weights, encrypted)")
    shape.add_argument("--models", default="3", help="board sizes to run, e.g. 3,12,24 (default 3)")
    shape.add_argument("--width", type=int, default=64, help="embedding dim (default 64)")
    shape.add_argument("--layers", type=int, default=2, help="default 2")
    shape.add_argument("--heads", type=int, default=4, help="default 4")
    shape.add_argument("--ff", type=int, default=None, help="feed-forward hidden dim (default 4×width)")
    shape.add_argument("--full-v1", action="store_true",
                       help="V1 preset for a GPU machine: shape 2048/24/8/8192 (overrides the four flags above), "
                            "256 samples, 3 of them for the official path, unless given")
    data = p.add_argument_group("data")
    data.add_argument("--samples", type=int, default=None, help="samples scored by the pool (default 192)")
    data.add_argument("--sample-bytes", default="1024..8192",
                      help="sizes: 'MIN..MAX' (uniform) or a comma list cycled over the samples (default 1024..8192)")
    data.add_argument("--official-samples", type=int, default=None,
                      help="score only the first K samples on the official path (default all; rates are per second)")
    data.add_argument("--seed", type=int, default=0, help="seed for data, weights and target (default 0)")
    pool = p.add_argument_group("pool designs")
    pool.add_argument("--designs", default=",".join(DESIGNS), help=f"which to run (default {','.join(DESIGNS)})")
    pool.add_argument("--models-per-actor", type=int, default=3,
                      help="sharded: models per stage (default 3; an L4 holds about 3-4 float32 V1 models)")
    pool.add_argument("--resident", type=int, default=3,
                      help="single-stage: models an actor keeps loaded (default 3, the old max_resident_models)")
    pool.add_argument("--actors", type=int, default=None,
                      help="actors per stage (default: CPU count / stages on cpu, 1 on cuda)")
    pool.add_argument("--gpus-per-actor", type=float, default=None, help="default: GPUs / actors on cuda, 0 on cpu")
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
    run.add_argument("--skip-official", action="store_true", help="leave the official path out")
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
        args.official_samples = args.official_samples or 3  # each request reloads N × 4.8 GB
    args.ff = args.ff or 4 * args.width
    args.samples = args.samples or 192
    args.rows_per_forward = args.rows_per_forward or 16
    args.batch_samples = args.batch_samples or (32 if args.device == "cuda" else 8)
    try:
        args.boards = sorted({int(x) for x in args.models.split(",") if x.strip()})
    except ValueError:
        p.error(f"--models {args.models!r}: give board sizes as a comma list of integers, e.g. 3,12,24")
    if not args.boards or args.boards[0] < 1:
        p.error("--models: every board needs at least one model")
    args.designs = [d.strip() for d in args.designs.split(",") if d.strip()]
    unknown = sorted(set(args.designs) - set(DESIGNS))
    if unknown or not args.designs:
        p.error(f"--designs: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(DESIGNS)}")
    if args.skip_official and "official" in args.designs:
        args.designs.remove("official")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device visible to torch")
    if args.models_per_actor < 1 or args.resident < 1:
        p.error("--models-per-actor and --resident must be at least 1")
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


def make_models(args: argparse.Namespace, count: int, blob_dir: Path, base_url: str) -> list[ModelBlob]:
    """Random weights per model (torch.manual_seed), saved, encrypted with a fresh key, written; a
    scenario of N models uses the first N, so boards of every size share their models."""
    config = ModelConfig(dropout_rate=0.0, **model_kwargs(args))
    blobs = []
    for i in range(count):
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
        """Scored tokens × models per second: throughput per (sample × model), in tokens."""
        return self.chunks * MAX_SEQ_LEN * self.models / self.seconds

    @property
    def pairs_per_s(self) -> float:
        """(sample, model) pairs scored per second."""
        return self.samples * self.models / self.seconds

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds

    def summary(self) -> dict[str, Any]:
        return {"samples": self.samples, "chunks": self.chunks, "models": self.models,
                "seconds": self.seconds, "tokens_per_s": self.tokens_per_s, "samples_per_s": self.samples_per_s,
                "pairs_per_s": self.pairs_per_s, "peak_rss_mib": self.peak_rss_mib, **self.notes}


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
    log(f"official-style: {len(chosen)} samples × {len(blobs)} models, one request at a time")
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        out = pool.submit(run_official, job).result()
    notes = {"load_s": out["load_s"], "eval_s": out["eval_s"], "torch_threads": out["threads"]}
    if out["gpu_peak_mib"] is not None:
        notes["gpu_peak_mib"] = out["gpu_peak_mib"]
    return PathResult("official", len(chosen), sum(map(chunk_count, chosen)), len(blobs),
                      out["seconds"], out["peak_rss_mib"], out["losses"], out["winners"], notes)


# -- the pool designs ---------------------------------------------------------------------------


def measure_design(args: argparse.Namespace, design: Design, blobs: list[ModelBlob], samples: list[bytes],
                   target: Target, workdir: Path) -> PathResult:
    """One pool design on a fresh model cache (so its warm-up includes every download)."""
    layout = layout_for(design, len(blobs), device=args.device, models_per_actor=args.models_per_actor,
                        resident=args.resident, actors=args.actors, gpus_per_actor=args.gpus_per_actor)
    log(f"{design}, {len(blobs)} models: {layout.describe()}; {len(samples)} samples")
    cache = Path(tempfile.mkdtemp(prefix=f"cache-{design}-{len(blobs)}-", dir=workdir))
    run = measure_pool(layout, model_config=model_kwargs(args), manifests={b.model_id: b.manifest for b in blobs},
                       target=target, samples=samples, data_path=workdir / "samples.jsonl", cache_dir=cache,
                       batch_samples=args.batch_samples, rows_per_forward=args.rows_per_forward,
                       precision=args.precision, device=args.device, seed=SCORING_SEED)
    winners = [int(np.argmin(row)) if np.isfinite(row).all() else -1 for row in run.losses]
    return PathResult(design, len(samples), sum(map(chunk_count, samples)), len(blobs), run.seconds,
                      max(run.actor_peak_rss_mib, default=math.nan), run.losses, winners,
                      pool_notes(run, layout))


def pool_notes(run: PoolRun, layout: Layout) -> dict[str, Any]:
    """Warm-up vs steady state, loads per (actor, model), memory and CPU time of one pool run."""
    window, steady_chunks, steady_batches = steady_state(run.arrivals, layout.actors_per_stage)
    first = run.arrivals[0].at if run.arrivals else math.nan
    models = run.losses.shape[1]
    return {
        "layout": asdict(layout),
        "ray_init_s": run.ray_init_s,
        "first_batch_s": first,
        "steady_tokens_per_s": steady_chunks * MAX_SEQ_LEN * models / window if window > 0 else math.nan,
        "steady_batches": steady_batches,
        "batches": len(run.arrivals),
        "loads_total": run.loads.total,
        "loads_max_per_actor_model": run.loads.max_per_actor,
        "actors_seen": len({tag for tag, _ in run.loads.seen}),
        "actor_peak_rss_mib": run.actor_peak_rss_mib,
        "driver_peak_rss_mib": run.driver_peak_rss_mib,
        "cpu_seconds": run.cpu_seconds,
        "f32_scored_samples": int(np.isfinite(run.losses).all(axis=1).sum()),
        "arrivals_s": [round(a.at, 3) for a in run.arrivals],
    }


# -- a board of N models: every design --------------------------------------------------------------


@dataclass
class Board:
    models: int
    results: dict[str, PathResult]
    agreements: dict[str, Agreement]


def run_board(args: argparse.Namespace, blobs: list[ModelBlob], samples: list[bytes], workdir: Path) -> Board:
    target = make_target(args, blobs)
    results: dict[str, PathResult] = {}
    if "official" in args.designs:  # first, before Ray starts: its process has the machine to itself
        results["official"] = measure_official(args, blobs, samples, target)
    for design in ("sharded", "single-stage"):
        if design in args.designs:
            results[design] = measure_design(args, design, blobs, samples, target, workdir)
    reference = results.get("official") or results.get("sharded")
    agreements = {name: compare(result, reference, args.rtol)
                  for name, result in results.items() if reference is not None and result is not reference}
    return Board(len(blobs), results, agreements)


# -- comparison and report ----------------------------------------------------------------------


@dataclass
class Agreement:
    pairs: int
    max_rel: float
    winners_equal: int
    winners_compared: int
    ok: bool


def compare(a: PathResult, b: PathResult, rtol: float) -> Agreement:
    """Losses per (sample, model) on the samples both designs scored in float32, and the winners."""
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


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def print_report(args: argparse.Namespace, boards: list[Board], flops: float, params: int) -> None:
    show_mfu = args.device == "cuda" and args.peak_tflops is not None
    print(f"\nmodels: up to {max(args.boards)} × (width {args.width}, {args.layers} layers, {args.heads} heads, "
          f"ff {args.ff}; {params:,} params), random weights, encrypted; device {args.device}, {os.cpu_count()} CPUs")
    print(f"data:   {args.samples} samples of {min(args.sizes)}..{max(args.sizes)} bytes; the official path scores "
          f"the first {args.official_samples}; batch {args.batch_samples} samples, {args.rows_per_forward} rows/forward, "
          f"{args.precision}")
    print("throughput per (sample × model): scored tokens × models / s over the whole run, and in steady state "
          "(after every actor has delivered once)")
    header = (f"{'models':>6}  {'design':<13}{'seconds':>9}{'pairs/s':>9}{'tok·model/s':>13}{'steady':>10}"
              f"{'loads max':>10}{'loads':>7}{'actors':>7}  {'actor peak RSS':>15}  layout")
    print("\n" + header)
    print("-" * len(header))
    for board in boards:
        for name, r in board.results.items():
            steady = r.notes.get("steady_tokens_per_s", math.nan)
            loads = (f"{r.notes['loads_max_per_actor_model']:>10}{r.notes['loads_total']:>7}{r.notes['actors_seen']:>7}"
                     if "loads_total" in r.notes else f"{'1/req':>10}{r.samples * r.models:>7}{'-':>7}")
            layout = r.notes.get("layout")
            where = (f"{layout['stages']}×{layout['actors_per_stage']} actors, {layout['models_per_actor']}/stage, "
                     f"{layout['resident']} resident" if layout else "one process")
            mfu_text = f"  MFU {mfu(steady, flops, 1, args.peak_tflops) or 0.0:.1%}" if show_mfu and layout else ""
            print(f"{board.models:>6}  {name:<13}{r.seconds:>9.1f}{r.pairs_per_s:>9.2f}{r.tokens_per_s:>13,.0f}"
                  f"{'' if math.isnan(steady) else f'{steady:,.0f}':>10}{loads}  {fmt_mib(r.peak_rss_mib):>15}  "
                  f"{where}{mfu_text}")
    print()
    for line in summary_lines(boards):
        print(line)
    for board in boards:
        for name, a in board.agreements.items():
            ref = "official" if "official" in board.results else "sharded"
            print(f"{board.models} models, {name} vs {ref}: results agree: {'yes' if a.ok else 'no'} "
                  f"(max relative loss difference {a.max_rel:.2e} over {a.pairs} pairs, rtol {args.rtol:g}; "
                  f"winners equal {a.winners_equal}/{a.winners_compared})")
    sys.stdout.flush()  # before the stderr lines that follow


def summary_lines(boards: list[Board]) -> list[str]:
    """The issue's targets: sharded throughput flat in the board size, ≤ 1 load per model per actor,
    and the ratios to the single-stage pool and the official path."""
    lines = []
    sharded = [(b.models, b.results["sharded"]) for b in boards if "sharded" in b.results]
    if sharded:
        base_n, base = sharded[0]
        for n, r in sharded[1:]:
            lines.append(
                f"sharded, {n} vs {base_n} models, throughput per (sample × model): whole run "
                f"{ratio(r.tokens_per_s, base.tokens_per_s):.2f}×, steady state "
                f"{ratio(r.notes['steady_tokens_per_s'], base.notes['steady_tokens_per_s']):.2f}× (target ≥ 0.85)")
        worst = max(r.notes["loads_max_per_actor_model"] for _, r in sharded)
        lines.append(f"sharded, model loads per model per actor: at most {worst} (target ≤ 1)")
    for b in boards:
        if "sharded" not in b.results:
            continue
        s = b.results["sharded"]
        for other in ("single-stage", "official"):
            if other in b.results:
                o = b.results[other]
                lines.append(f"{b.models} models: sharded / {other} = {ratio(s.tokens_per_s, o.tokens_per_s):.2f}× "
                             f"(steady sharded / whole {other}: "
                             f"{ratio(s.notes['steady_tokens_per_s'], o.tokens_per_s):.2f}×)")
    return lines


def write_json(path: Path, args: argparse.Namespace, boards: list[Board], flops: float, params: int) -> None:
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "sizes"}
    out: dict[str, Any] = {
        "config": config,
        "environment": {"torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
                        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
                        "loadavg": os.getloadavg()},
        "params": params, "flops_per_token": flops,
        "boards": [{"models": b.models, "results": {n: r.summary() for n, r in b.results.items()},
                    "agreements": {n: asdict(a) for n, a in b.agreements.items()}} for b in boards],
        "summary": summary_lines(boards),
    }
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
            blobs = make_models(args, max(args.boards), blob_dir, server.url)
            samples = make_samples(args.sizes, args.seed)
            write_jsonl(samples, workdir / "samples.jsonl")
            boards = [run_board(args, blobs[:n], samples, workdir) for n in args.boards]
    # Forward FLOPs per token (one device; MFU against --peak-tflops): 2·(params − embedding) for
    # the matmuls + 4·layers·1024·width for QKᵀ and A·V over the full square. V1: 2.62e9.
    params = parameter_count(args.width, args.ff, args.layers)
    flops = forward_flops_per_token(args.width, args.ff, args.layers)
    print_report(args, boards, flops, params)
    log(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        write_json(args.json, args, boards, flops, params)
    return 0 if all(a.ok for b in boards for a in b.agreements.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
