"""Benchmark: training throughput and MFU of the soma-ray trainer against a quickstart-style loop.

(a) soma-ray     — `soma_ray.training.run_training`: Ray Train `TorchTrainer` + DeepSpeed (ZeRO,
                   AdamW), the scoring-contract objective (fused attention, global positions).
(b) quickstart   — what the official quickstart's `train_torch.py` does, in one fresh process:
                   `soma_models` `Model` + `compute_loss` + `SIGReg(SIGRegConfig())` (per-row
                   positions, torch cross entropy), plain `torch.optim.Adam`, micro-batch 2,
                   `.item()` on the loss every micro-step; bf16 autocast on CUDA, float32 on CPU.

Same model shape, same byte data (both read `SequenceStream`, so they see the same 1024-token
sequences), the same number of sequences per optimizer step (16 unless told), the same steps.
Both are timed over the second half of the steps (the first half is warm-up): the trainer's own
`tokens_per_second` over its last log window, and a wall clock around the same steps for (b).
A token is one of the 1024 positions of a sequence, padding included, on both paths.

    .venv/bin/python bench/training.py --preset tiny --device cpu --steps 30          # CPU, ~3 min on 2 cores
    .venv/bin/python bench/training.py --preset v1 --device cuda --json v1-train.json  # one GPU
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from soma_ray.config import TrainConfig, load_config
from soma_ray.data import DataConfig, build_source
from soma_ray.data.config import SourceKind
from soma_ray.protocol.constants import MAX_SEQ_LEN
from soma_ray.scoring.chunks import chunk_samples
from soma_ray.training.config import HeldoutSection
from soma_ray.training.data import SequenceStream, heldout_samples, is_heldout
from soma_ray.training.flops import mfu, parameter_count, peak_tflops, training_flops_per_token

# Ray on these machines (design.md): loopback only, no auth token, no usage stats.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REPO = Path(__file__).resolve().parents[1]
SHAPES: dict[str, dict[str, int]] = {
    "tiny": {"embedding_dim": 64, "pwff_hidden_dim": 128, "num_layers": 2, "num_heads": 4},
    "v1": {"embedding_dim": 2048, "pwff_hidden_dim": 8192, "num_layers": 24, "num_heads": 8},
}
QUICKSTART_MICRO_BATCH = 2  # quickstart train_torch.py: MICRO_BATCH_SIZE = 2
LR = 1e-4  # quickstart's LEARNING_RATE, used on both paths


def log(message: str) -> None:
    """Progress goes to stderr; the table goes to stdout."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Training tokens/s and MFU: the soma-ray trainer (a) vs a quickstart-style loop (b).",
    )
    p.add_argument("--preset", choices=sorted(SHAPES), default="tiny",
                   help="tiny: width 64 / ff 128 / 2 layers / 4 heads (CPU); v1: the full V1 shape (one GPU)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cpu: float32 on both paths; cuda: bf16 (DeepSpeed bf16 / torch autocast)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps per path, rounded up to even: the first half is warm-up, the second "
                        "half is timed (default 30 tiny, 40 v1)")
    p.add_argument("--workers", type=int, default=None, help="soma-ray trainer workers (default 1 on cuda, 2 on cpu)")
    p.add_argument("--micro-batch", type=int, default=None,
                   help="soma-ray sequences per worker per micro-step (default 2 tiny, 8 v1); (b) always uses 2")
    p.add_argument("--batch", type=int, default=16,
                   help="sequences per optimizer step on both paths (default 16 = quickstart 2 × 8 accumulation); "
                        "soma-ray accumulates batch / (workers × micro-batch)")
    p.add_argument("--zero-stage", type=int, choices=[1, 2, 3], default=None, help="default 2 tiny, 1 v1")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="on both paths (default 0; the quickstart itself trains with 0.1)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="per-device dense peak for MFU (default: soma_ray.training.flops table; none on CPU)")
    p.add_argument("--data", type=Path, default=None,
                   help="a folder (every file is a sample), a .jsonl file (field 'text') or a text file "
                        "(default: this repo's soma_ray/**/*.py); samples over 16 KiB are dropped")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra TrainConfig override for (a), e.g. training.cpus_per_worker=1 (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="weights and data order (default 0)")
    p.add_argument("--skip-quickstart", action="store_true", help="measure (a) only")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the figures as JSON")
    args = p.parse_args(argv)
    apply_defaults(args, p)
    return args


def apply_defaults(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """Fill the defaults that depend on the preset and device; reject impossible combinations."""
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device visible to torch")
    v1 = args.preset == "v1"
    args.steps = args.steps or (40 if v1 else 30)
    if args.steps < 2:
        p.error("--steps must be at least 2 (half warm-up, half timed)")
    args.steps += args.steps % 2
    args.workers = args.workers or (1 if args.device == "cuda" else 2)
    args.micro_batch = args.micro_batch or (8 if v1 else 2)
    args.zero_stage = args.zero_stage or (1 if v1 else 2)
    args.precision = "bf16" if args.device == "cuda" else "float32"
    per_micro_step = args.workers * args.micro_batch
    if args.batch % per_micro_step or args.batch % QUICKSTART_MICRO_BATCH:
        p.error(f"--batch {args.batch} must be a multiple of workers × micro-batch ({per_micro_step}) and of "
                f"{QUICKSTART_MICRO_BATCH}")
    args.grad_accum = args.batch // per_micro_step
    args.quickstart_accum = args.batch // QUICKSTART_MICRO_BATCH
    if args.device == "cuda" and args.workers > torch.cuda.device_count():
        p.error(f"--workers {args.workers}: only {torch.cuda.device_count()} GPU(s) visible")


# -- the shared inputs: data, model shape, FLOPs ---------------------------------------------------


def data_config(path: Path | None) -> DataConfig:
    """The byte source both paths read; capped at 16 KiB a sample (what the scorer is exact on)."""
    if path is None:
        return DataConfig(source="files", path=REPO / "soma_ray", globs=["**/*.py"], max_bytes=16384)
    path = path.resolve()  # the Ray workers do not share our working directory
    if path.is_dir():
        return DataConfig(source="files", path=path, max_bytes=16384)
    source: SourceKind = "jsonl" if path.name.endswith((".jsonl", ".jsonl.gz")) else "text"
    return DataConfig(source=source, path=path, max_bytes=16384)


def describe_data(data: DataConfig, heldout: HeldoutSection) -> dict[str, int]:
    """Samples and 1024-token sequences per pass (local sources only: it reads them all once)."""
    samples = [s for s in build_source(data) if not is_heldout(s, heldout.every)]
    sequences = sum(int(chunk_samples([(0, s)]).tokens.shape[0]) for s in samples)
    return {"training_samples": len(samples), "sequences_per_pass": sequences,
            "heldout_samples": len(heldout_samples(data, heldout))}


def train_config(args: argparse.Namespace, data: DataConfig, storage: Path) -> TrainConfig:
    """(a)'s config, written as `--set` overrides so a bad value gets the loader's one-line error.

    Logging at half the steps makes the last report's tokens/s the second half exactly; eval and
    checkpoints only at the end (their time is not in the trainer's tokens/s anyway).
    """
    half = args.steps // 2
    cpus = os.cpu_count() or 1
    values: dict[str, Any] = {
        "model": {"preset": "v1"} if args.preset == "v1" else {"preset": "custom", **SHAPES["tiny"]},
        "data": data.model_dump(mode="json", exclude_unset=True),
        "heldout.max_samples": 8,  # the end-of-run eval is not timed; keep it short on V1
        "training.storage_path": str(storage),
        "training.num_workers": args.workers,
        "training.use_gpu": args.device == "cuda",
        "training.cpus_per_worker": max(1, cpus // args.workers),
        "training.zero_stage": args.zero_stage,
        "training.precision": args.precision,
        "training.micro_batch": args.micro_batch,
        "training.grad_accum": args.grad_accum,
        "training.lr": LR,
        "training.warmup_steps": 0,
        "training.max_steps": args.steps,
        "training.dropout": args.dropout,
        "training.seed": args.seed,
        "training.log_every": half,
        "training.eval_every": args.steps,
        "training.checkpoint_every": args.steps,
        "training.max_failures": 0,  # a failure is a bench failure, not something to retry
    }
    if args.peak_tflops is not None:
        values["training.peak_tflops"] = args.peak_tflops
    overrides = [f"{key}={json.dumps(value)}" for key, value in values.items()]  # JSON is YAML
    return load_config(TrainConfig, None, [*overrides, *args.overrides])


def device_peak(args: argparse.Namespace) -> float | None:
    """--peak-tflops, else the table's entry for this GPU and precision; None on CPU."""
    if args.peak_tflops is not None:
        return float(args.peak_tflops)
    if args.device == "cuda":
        return peak_tflops(torch.cuda.get_device_name(), args.precision)
    return None


# -- figures -----------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One path's steady-state figures (the timed second half of the steps)."""

    name: str
    setup: str  # how it ran, for the table
    tokens_per_s: float
    sequences_per_step: int
    devices: int  # for MFU: workers on (a), 1 on (b)
    loss: float  # the last loss in the path's own objective (not comparable across paths)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ms_per_step(self) -> float:
        return 1000 * self.sequences_per_step * MAX_SEQ_LEN / self.tokens_per_s

    def mfu(self, flops_per_token: float, peak: float | None) -> float | None:
        return mfu(self.tokens_per_s, flops_per_token, self.devices, peak)


# -- (a) the soma-ray trainer --------------------------------------------------------------------


def other_ray_clusters() -> int:
    """Ray clusters already running on this machine: their GCS processes (Linux /proc)."""
    count = 0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            count += comm.read_text().strip() == "gcs_server"
        except OSError:  # the process ended meanwhile
            continue
    return count


def neighbours() -> dict[str, float]:
    """Signs that something else shares the machine: other Ray clusters, 1-minute load average."""
    return {"other_ray_clusters": other_ray_clusters(), "loadavg_1m": os.getloadavg()[0]}


def start_ray(args: argparse.Namespace) -> float:
    """A local Ray cluster on every core (and GPU), dashboard included as in `run_training`.
    Returns the seconds it took."""
    import ray

    if others := other_ray_clusters():
        # Ray Train V2's placement-group cleaner finds "its" cluster through /tmp/ray/ray_current_cluster
        # (the latest one started) and may ask another cluster whether our controller lives, get no
        # answer, and remove our workers. The other cluster's load skews the figures too.
        log(f"warning: {others} other Ray cluster(s) running on this machine; the run may be killed "
            "(Ray Train's placement-group cleaner can query the wrong cluster) and the figures are skewed")
    start = time.perf_counter()
    # address="local": a cluster of our own, even where `ray start` left one running (ray.init() would join it).
    ray.init(address="local", num_cpus=os.cpu_count(),
             num_gpus=torch.cuda.device_count() if args.device == "cuda" else 0,
             log_to_driver=False, logging_level=logging.WARNING)
    return time.perf_counter() - start


def measure_soma_ray(args: argparse.Namespace, config: TrainConfig) -> Measurement:
    import ray

    from soma_ray.training.trainer import run_training

    before = neighbours()
    ray_init_s = start_ray(args)
    t = config.training
    log(f"(a) soma-ray: ray.init {ray_init_s:.1f} s; {t.num_workers} worker(s) × {t.cpus_per_worker:g} CPU, "
        f"ZeRO-{t.zero_stage}, {t.precision}, micro-batch {t.micro_batch} × accumulation {t.grad_accum}, "
        f"{t.max_steps} steps")
    try:
        start = time.perf_counter()
        outcome = run_training(config, export=False)
        wall_s = time.perf_counter() - start
    finally:
        ray.shutdown()
    after = neighbours()
    metrics = outcome.metrics
    if metrics.get("step") != t.max_steps or "tokens_per_second" not in metrics:
        raise RuntimeError(f"the trainer's last report is not the final step's: {metrics}")
    setup = (f"{t.num_workers} worker(s) × {t.cpus_per_worker:g} CPU{' × 1 GPU' if t.use_gpu else ''}, "
             f"ZeRO-{t.zero_stage} AdamW, {t.precision}, micro-batch {t.micro_batch} × accum {t.grad_accum}")
    notes = {"ray_init_s": ray_init_s, "run_training_wall_s": wall_s, "reported_mfu": metrics.get("mfu"),
             "last_report": {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))},
             "reports": getattr(outcome, "history", None),  # every log window, where the trainer returns them
             "neighbours_before": before, "neighbours_after": after}
    return Measurement(f"(a) soma-ray trainer, {t.num_workers} worker(s)", setup,
                       float(metrics["tokens_per_second"]), t.num_workers * t.micro_batch * t.grad_accum,
                       t.num_workers, float(metrics["loss"]), notes)


# -- (b) the quickstart-style loop -----------------------------------------------------------------


@dataclass(frozen=True)
class QuickstartJob:
    """Everything the fresh process needs (picklable)."""

    data: DataConfig
    heldout: HeldoutSection
    shape: dict[str, int]
    dropout: float
    seed: int
    shuffle_buffer: int
    steps: int
    accum: int
    device: str


def run_quickstart(job: QuickstartJob) -> dict[str, Any]:
    """The quickstart's train_torch.py loop on our data; times the second half of the steps."""
    from soma_models.v1.torch import Model, ModelConfig, SIGReg, SIGRegConfig, compute_loss

    device = torch.device(job.device)
    torch.manual_seed(job.seed)
    model = Model(ModelConfig(dropout_rate=job.dropout, **job.shape)).to(device)
    model.train()
    sig_reg = SIGReg(SIGRegConfig()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    # world_size 1: the same sequences the trainer's ranks share between them.
    batches = SequenceStream(job.data, job.heldout, rank=0, world_size=1, seed=job.seed,
                             shuffle_buffer=job.shuffle_buffer, micro_batch=QUICKSTART_MICRO_BATCH).batches()
    autocast: AbstractContextManager[Any] = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    )
    start, loss_value = 0.0, math.nan
    for step in range(job.steps):
        if step == job.steps // 2:  # warm-up done: allocator, kernels, first passes
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        optimizer.zero_grad()
        accumulated = 0.0
        for _ in range(job.accum):
            batch = next(batches)  # the quickstart streams inside its loop too
            token_ids, targets = batch.tokens.to(device), batch.targets.to(device)
            with autocast:
                loss, _embedding = compute_loss(model, sig_reg, token_ids, targets)
            torch.autograd.backward(loss / job.accum)  # = (loss / accum).backward(), typed
            accumulated += loss.item()  # a host sync every micro-step, as in the quickstart
        optimizer.step()
        loss_value = accumulated / job.accum
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    timed_steps = job.steps - job.steps // 2
    return {
        "seconds": seconds, "timed_steps": timed_steps, "loss": loss_value, "threads": torch.get_num_threads(),
        "tokens_per_s": timed_steps * job.accum * QUICKSTART_MICRO_BATCH * MAX_SEQ_LEN / seconds,
        "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
    }


def measure_quickstart(args: argparse.Namespace, config: TrainConfig) -> Measurement:
    job = QuickstartJob(config.data, config.heldout, config.architecture.shape(), args.dropout, args.seed,
                        config.training.shuffle_buffer, args.steps, args.quickstart_accum, args.device)
    log(f"(b) quickstart-style: 1 process, Adam, micro-batch {QUICKSTART_MICRO_BATCH} × accumulation "
        f"{job.accum}, {'bf16 autocast' if args.device == 'cuda' else 'float32'}, {job.steps} steps")
    # A fresh process: its CUDA memory and threads are its own, and nothing of Ray runs beside it.
    before = neighbours()
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        out = pool.submit(run_quickstart, job).result()
    after = neighbours()
    setup = (f"1 process × {out['threads']} thread(s){' × 1 GPU' if args.device == 'cuda' else ''}, Adam, "
             f"{'bf16 autocast' if args.device == 'cuda' else 'float32'}, "
             f"micro-batch {QUICKSTART_MICRO_BATCH} × accum {job.accum}")
    notes = {**{k: out[k] for k in ("seconds", "timed_steps", "threads", "gpu_peak_mib")},
             "neighbours_before": before, "neighbours_after": after}
    return Measurement("(b) quickstart-style loop", setup, out["tokens_per_s"],
                       QUICKSTART_MICRO_BATCH * job.accum, 1, out["loss"], notes)


# -- report ------------------------------------------------------------------------------------


def fmt_mfu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def print_report(args: argparse.Namespace, config: TrainConfig, data: dict[str, int], flops: float,
                 peak: float | None, results: Sequence[Measurement]) -> None:
    shape = config.architecture.shape()
    params = parameter_count(shape["embedding_dim"], shape["pwff_hidden_dim"], shape["num_layers"])
    half = args.steps // 2
    print(f"\nmodel:  {args.preset} (width {shape['embedding_dim']}, ff {shape['pwff_hidden_dim']}, "
          f"{shape['num_layers']} layers, {shape['num_heads']} heads; {params:,} params), dropout {args.dropout:g}")
    print(f"data:   {config.data.path} ({config.data.source}), {data['training_samples']} training samples = "
          f"{data['sequences_per_pass']} sequences of {MAX_SEQ_LEN} tokens per pass, "
          f"{data['heldout_samples']} held out")
    print(f"steps:  {args.steps} per path, {args.batch} sequences ({args.batch * MAX_SEQ_LEN:,} tokens) each; "
          f"the first {half} are warm-up, the last {half} are timed")
    print(f"FLOPs:  {flops / 1e6:,.2f} MFLOP per token for training (6·N + 12·L·D·S); peak "
          f"{'unknown: MFU n/a (give --peak-tflops)' if peak is None else f'{peak:g} TFLOP/s per device'}")
    print(f"\n{'path':<36}{'tokens/s':>12}{'ms/step':>10}{'MFU':>8}   setup")
    print("-" * 130)
    for r in results:
        print(f"{r.name:<36}{r.tokens_per_s:>12,.0f}{r.ms_per_step:>10.1f}{fmt_mfu(r.mfu(flops, peak)):>8}   {r.setup}")
    if len(results) == 2:
        print(f"\nratio soma-ray / quickstart, tokens/s: {results[0].tokens_per_s / results[1].tokens_per_s:.2f}×")
    for r in results:
        before, after = r.notes["neighbours_before"], r.notes["neighbours_after"]
        clusters = max(before["other_ray_clusters"], after["other_ray_clusters"])
        if clusters:
            print(f"WARNING: {r.name} ran beside {clusters:g} other Ray cluster(s): its figures are skewed")
        elif after["loadavg_1m"] > 1.5 * (os.cpu_count() or 1):  # each path alone keeps it near the CPU count
            print(f"WARNING: load average {after['loadavg_1m']:.1f} on {os.cpu_count()} CPUs after {r.name}: "
                  "something else may have shared the machine")
    a = results[0].notes
    print(f"(a) ray.init {a['ray_init_s']:.1f} s and run_training {a['run_training_wall_s']:.1f} s in all "
          "(worker start, DeepSpeed init, warm-up, timed steps, final eval + checkpoint)")
    sys.stdout.flush()  # before the stderr lines that follow


def write_json(path: Path, args: argparse.Namespace, data: dict[str, int], flops: float, peak: float | None,
               results: Sequence[Measurement]) -> None:
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    out: dict[str, Any] = {
        "config": config,
        "environment": {"torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
                        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
                        "loadavg": os.getloadavg()},
        "data": data, "flops_per_token": flops, "peak_tflops": peak,
        "results": [{**asdict(r), "ms_per_step": r.ms_per_step, "mfu": r.mfu(flops, peak)} for r in results],
        "ratio_tokens_per_s": results[0].tokens_per_s / results[1].tokens_per_s if len(results) == 2 else None,
    }
    path.write_text(json.dumps(out, indent=2, default=str) + "\n")
    log(f"figures written to {path}")


# -- main ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    log(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="soma-bench-train-") as storage:
        config = train_config(args, data_config(args.data), Path(storage))
        data = describe_data(config.data, config.heldout)
        if not data["heldout_samples"]:
            raise SystemExit("the data has no held-out sample (the trainer needs one): "
                             "add --set heldout.every=5 or give more data")
        shape = config.architecture.shape()
        flops = training_flops_per_token(shape["embedding_dim"], shape["pwff_hidden_dim"], shape["num_layers"])
        # (b) first, in its own process, while no Ray process competes for the cores.
        quickstart = None if args.skip_quickstart else measure_quickstart(args, config)
        results = [measure_soma_ray(args, config), *([quickstart] if quickstart else [])]
    peak = device_peak(args)
    print_report(args, config, data, flops, peak, results)
    log(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        write_json(args.json, args, data, flops, peak, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
