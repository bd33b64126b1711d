"""One prepared benchmark for a bare GPU machine: soma-ray's scoring and training on full V1.

Needs only torch, numpy and safetensors plus the wheels `bench/device-wheels.sh` collects
(soma-models, soma-arrgen, soma-sdk, DeepSpeed, pydantic, ...): no Ray, which does not fit on
the device machine. Sections, each timed and recorded even if another one fails:

- ceilings: the measured bf16 and TF32 matmul rates (8192³) and the device copy bandwidth;
- exact: `soma_ray.scoring.evaluate` on random V1 weights in float32 with TF32 matmuls (what the
  official CUDA scorer does, §1.4), across rows per forward and attention kernels: tokens/s, MFU
  against the measured TF32 peak and the datasheet's, GPU memory per resident model;
- reference: the exact scorer against soma-models' own forward in strict float32 (no TF32), one
  sample at a time, within the audit tolerance (§1.8); the bf16 pre-filter's error beside it;
- prefilter: the same evaluate under bf16 autocast;
- official: the official-style per-request path (re-read, verify, decrypt and load the 4.84 GB
  for every request) and the ratio of the exact scorer's rate to it;
- training: V1 in bf16 with DeepSpeed ZeRO-1 on one GPU, one process, through
  `soma_ray.training.engine` and `ScoringObjective`, across micro-batches and activation
  checkpointing: tokens/s and MFU;
- compile: `torch.compile` of the exact forward, if the budget leaves time.

It prints one JSON document last and writes it (after every section, so a run cut short still
leaves one) to `--out`, by default `$OUT/device.json`. `--smoke` runs everything on a tiny model
on CPU in about a minute; the test suite runs it.

    bench/device-wheels.sh          # here: collect the wheels, print the device command
    python3 bench/device.py --smoke --out /tmp/device-smoke.json
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import gc
import json
import math
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")  # variants of many sizes, one process
sys.path[:0] = [str(REPO), str(REPO / "bench")]  # soma_ray and bench/official.py, uninstalled

import numpy as np
import torch
from soma_models.v1.torch import Model, ModelConfig

from soma_ray.protocol.audit import within_audit_tolerance
from soma_ray.protocol.constants import MAX_SEQ_LEN
from soma_ray.scoring.evaluate import Evaluation, evaluate
from soma_ray.scoring.select import cosine_distance
from soma_ray.scoring.sigreg import NoiseBank
from soma_ray.training.flops import forward_flops_per_token, mfu, peak_tflops, training_flops_per_token

SCORING_SEED = 0  # the protocol's scoring seed (§1.1)
GOALS = {"exact_tokens_per_s": 100_000, "exact_over_official": 50.0, "prefilter_tokens_per_s": 250_000,
         "training_mfu": 0.45}


@dataclass(frozen=True)
class Shape:
    """What runs: the model and how much work each section gets."""

    width: int
    ff: int
    layers: int
    heads: int
    device: str
    scoring_rows: int  # 1024-token chunks timed per scoring variant
    rows_per_forward: tuple[int, ...]
    reference_sizes: tuple[int, ...]  # sample bytes checked against the float32 reference
    official_requests: int
    official_bytes: int
    train_variants: tuple[tuple[int, int, bool], ...]  # (micro-batch, accumulation, checkpointing)
    train_steps: int  # timed optimizer steps per variant (after 2 warm-up steps)
    matmul: int  # side of the square matmul for the ceilings

    def model_config(self) -> ModelConfig:
        return ModelConfig(dropout_rate=0.0, embedding_dim=self.width, pwff_hidden_dim=self.ff,
                           num_layers=self.layers, num_heads=self.heads)

    def forward_flops(self) -> float:
        return forward_flops_per_token(self.width, self.ff, self.layers)

    def training_flops(self) -> float:
        return training_flops_per_token(self.width, self.ff, self.layers)


V1 = Shape(width=2048, ff=8192, layers=24, heads=8, device="cuda", scoring_rows=512,
           rows_per_forward=(16, 8, 32, 64), reference_sizes=(3_000, 20_000), official_requests=2,
           official_bytes=16_384, train_variants=((8, 2, False), (16, 1, False), (32, 1, False), (32, 1, True)),
           train_steps=6, matmul=8192)
SMOKE = Shape(width=64, ff=128, layers=2, heads=4, device="cpu", scoring_rows=24,
              rows_per_forward=(16, 4), reference_sizes=(3_000, 20_000), official_requests=2,
              official_bytes=4_096, train_variants=((2, 2, False), (2, 1, True)), train_steps=2, matmul=256)


def log(message: str) -> None:
    print(f"[device] {message}", file=sys.stderr, flush=True)


# -- the run's record -------------------------------------------------------------------------------


class Report:
    """The JSON document: every section's figures or its error, rewritten after each section."""

    def __init__(self, path: Path, budget_s: float) -> None:
        self.path, self.budget_s, self.start = path, budget_s, time.monotonic()
        self.doc: dict[str, Any] = {"goals": GOALS, "sections": {}}

    def left_s(self) -> float:
        return self.budget_s - (time.monotonic() - self.start)

    def section(self, name: str, run: Callable[[], dict[str, Any]], needs_s: float = 0.0) -> dict[str, Any] | None:
        if self.left_s() < needs_s:
            log(f"{name}: skipped, {self.left_s():.0f} s left of the budget and it needs ~{needs_s:.0f} s")
            self.doc["sections"][name] = {"skipped": f"budget: {self.left_s():.0f} s left, needs ~{needs_s:.0f} s"}
            self.write()
            return None
        log(f"{name}: start ({self.left_s():.0f} s of budget left)")
        t0 = time.monotonic()
        try:
            result = run()
        except Exception as error:  # noqa: BLE001 - one section's failure must not lose the others
            traceback.print_exc()
            result = {"error": f"{type(error).__name__}: {error}"}
        result["seconds"] = round(time.monotonic() - t0, 2)
        self.doc["sections"][name] = result
        self.write()
        release_memory()
        return result if "error" not in result else None

    def write(self) -> None:
        self.doc["elapsed_s"] = round(time.monotonic() - self.start, 2)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.doc, indent=2, default=_json_default) + "\n")


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# -- timing and data --------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, work: Callable[[], object]) -> float:
    """Wall seconds of `work`, with the device drained before and after."""
    synchronize(device)
    t0 = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - t0


def make_samples(total_rows: int, seed: int, low: int = 1_024, high: int = 65_536) -> list[bytes]:
    """Printable text samples, sizes log-uniform in [low, high), until `total_rows` chunks."""
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789()[]{}=+-*/_.,:;\n", dtype=np.uint8)
    samples: list[bytes] = []
    rows = 0
    while rows < total_rows:
        size = int(math.exp(rng.uniform(math.log(low), math.log(high))))
        samples.append(alphabet[rng.integers(0, len(alphabet), size=size)].tobytes())
        rows += chunks_of(samples[-1])
    return samples


def chunks_of(data: bytes) -> int:
    return -(-len(data) // MAX_SEQ_LEN)


def random_model(shape: Shape, device: torch.device, seed: int) -> Model:
    """Random V1 weights built directly on the device (seconds on a GPU, not a minute on its CPU)."""
    torch.manual_seed(seed)
    with torch.device(device):
        model = Model(shape.model_config())
    return model.eval()


def mib(n_bytes: float) -> float:
    return round(n_bytes / 2**20, 1)


def datasheet_peak(device: torch.device, precision: str) -> float | None:
    if device.type != "cuda":
        return None
    return peak_tflops(torch.cuda.get_device_name(device), precision)


def utilisation(tokens_per_s: float, flops_per_token: float, peak: float | None) -> float | None:
    """MFU on one device, rounded for the JSON (None without a peak)."""
    value = mfu(tokens_per_s, flops_per_token, 1, peak)
    return None if value is None else round(value, 4)


# -- sections ---------------------------------------------------------------------------------------


def environment(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "cuda": torch.version.cuda, "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, capability=f"{props.major}.{props.minor}", sms=props.multi_processor_count,
                    memory_gib=round(props.total_memory / 2**30, 1))
    else:
        info.update(name=platform.processor() or "cpu", threads=torch.get_num_threads())
    return info


def ceilings(shape: Shape, device: torch.device) -> dict[str, Any]:
    """Median TFLOP/s of an n³ matmul (bf16; float32 with TF32) on random data, and copy GB/s."""
    n = shape.matmul
    out: dict[str, Any] = {"matmul_n": n}
    for label, dtype, tf32 in (("bf16", torch.bfloat16, False), ("tf32", torch.float32, True)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = [torch.randn(n, n, device=device, dtype=dtype) for _ in range(3)]  # rotate: not one cached pair
        b = [torch.randn(n, n, device=device, dtype=dtype) for _ in range(3)]
        for i in range(3):
            a[i] @ b[i]
        def ten(x: list[torch.Tensor] = a, y: list[torch.Tensor] = b) -> None:
            for i in range(10):
                x[i % 3] @ y[i % 3]

        times = [timed(device, ten) / 10 for _ in range(5)]
        out[f"{label}_tflops"] = round(2 * n**3 / statistics.median(times) / 1e12, 1)
        del a, b
    torch.backends.cuda.matmul.allow_tf32 = False
    src = torch.empty(2**28 if device.type == "cuda" else 2**22, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = [timed(device, lambda: dst.copy_(src)) for _ in range(10)]
    out["copy_gb_per_s"] = round(2 * src.numel() * 4 / statistics.median(times) / 1e9, 1)
    out["datasheet_bf16_tflops"] = datasheet_peak(device, "bf16")
    out["datasheet_tf32_tflops"] = datasheet_peak(device, "float32")
    return out


class Scorer:
    """One resident random model and a fixed sample set, timed under several settings."""

    def __init__(self, shape: Shape, device: torch.device) -> None:
        self.shape, self.device = shape, device
        before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
        self.model = random_model(shape, device, seed=1)
        self.model_bytes = (torch.cuda.memory_allocated(device) - before if device.type == "cuda"
                            else sum(p.numel() * p.element_size() for p in self.model.parameters()))
        self.noise = NoiseBank(shape.width, device, SCORING_SEED)
        self.samples = make_samples(shape.scoring_rows, seed=2)
        self.rows = sum(map(chunks_of, self.samples))

    def run(self, label: str, rows_per_forward: int, precision: str = "float32",
            attention: str | None = None) -> dict[str, Any]:
        """Time `evaluate` over every sample once, after a warm-up on the first two."""
        with attention_backend(attention):
            evaluate(self.model, self.samples[:2], SCORING_SEED, rows_per_forward=rows_per_forward,
                     precision=precision, noise=self.noise)  # type: ignore[arg-type]
            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)
            results: list[Evaluation] = []
            seconds = timed(self.device, lambda: results.extend(evaluate(
                self.model, self.samples, SCORING_SEED, rows_per_forward=rows_per_forward,
                precision=precision, noise=self.noise)))  # type: ignore[arg-type]
        if not all(e.ok and math.isfinite(e.loss) for e in results):
            raise RuntimeError(f"{label}: a sample came back unscored or with a non-finite loss")
        tokens_per_s = self.rows * MAX_SEQ_LEN / seconds
        row = {"variant": label, "rows_per_forward": rows_per_forward, "precision": precision,
               "attention": attention or "default", "seconds": round(seconds, 3),
               "tokens_per_s": round(tokens_per_s), "samples_per_s": round(len(self.samples) / seconds, 2)}
        if self.device.type == "cuda":
            row["peak_gpu_mib"] = mib(torch.cuda.max_memory_allocated(self.device))
            row["activation_mib"] = mib(torch.cuda.max_memory_allocated(self.device) - self.model_bytes)
        log(f"  {label}: {row['tokens_per_s']:,} tokens/s ({seconds:.2f} s)")
        return row


@contextlib.contextmanager
def attention_backend(name: str | None) -> Iterator[None]:
    """Pin `scaled_dot_product_attention` to one kernel (None: PyTorch's own choice)."""
    if name is None:
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(getattr(SDPBackend, name)):
        yield


def scoring_rates(scorer: Scorer, peaks: dict[str, Any], precision: str, rows: Sequence[int],
                  attentions: Sequence[str]) -> dict[str, Any]:
    """The first `rows` entry twice (the spread between equal runs), the others once, then each
    attention kernel at the best rows per forward."""
    torch.backends.cuda.matmul.allow_tf32 = precision == "float32"  # exact: TF32 like the official scorer
    torch.backends.cudnn.allow_tf32 = precision == "float32"
    variants = [scorer.run(f"rows={rows[0]}", rows[0], precision)]
    variants += [scorer.run(f"rows={r}", r, precision) for r in rows]
    best = max(variants, key=lambda v: v["tokens_per_s"])
    for attention in attentions:
        label = f"rows={best['rows_per_forward']} {attention}"
        try:
            variants.append(scorer.run(label, best["rows_per_forward"], precision, attention))
        except RuntimeError as error:  # a kernel that does not take these inputs
            variants.append({"variant": label, "error": str(error)[:300]})
    timed_rows = [v for v in variants if "tokens_per_s" in v]
    best = max(timed_rows, key=lambda v: v["tokens_per_s"])
    flops = scorer.shape.forward_flops()
    measured = peaks.get("tf32_tflops" if precision == "float32" else "bf16_tflops")
    sheet = peaks.get("datasheet_tf32_tflops" if precision == "float32" else "datasheet_bf16_tflops")
    for v in timed_rows:
        v["mfu_measured_peak"] = utilisation(v["tokens_per_s"], flops, measured)
        v["mfu_datasheet"] = utilisation(v["tokens_per_s"], flops, sheet)
    baseline = variants[0]
    return {"samples": len(scorer.samples), "rows": scorer.rows, "flops_per_token": flops,
            "model_gpu_mib": mib(scorer.model_bytes), "variants": variants,
            "baseline_tokens_per_s": baseline["tokens_per_s"], "repeat_tokens_per_s": variants[1]["tokens_per_s"],
            "best": best, "tokens_per_s": best["tokens_per_s"]}


def reference_check(scorer: Scorer) -> dict[str, Any]:
    """Exact (TF32) and bf16 scores of a few samples against soma-models' forward in strict float32."""
    from tests.scoring.kit import reference_eval

    shape, model = scorer.shape, scorer.model
    samples = [make_samples(1, seed=4 + i, low=n, high=n + 1)[0] for i, n in enumerate(shape.reference_sizes)]
    target = np.random.default_rng(5).standard_normal(shape.width).astype(np.float32)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    exact = evaluate(model, samples, SCORING_SEED, noise=scorer.noise)
    fast = evaluate(model, samples, SCORING_SEED, precision="bf16", noise=scorer.noise)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rows = []
    for data, e, f in zip(samples, exact, fast, strict=True):
        ref_loss, ref_emb = reference_eval(model, data, SCORING_SEED)
        ref_distance = cosine_distance(ref_emb, target)
        distance, fast_distance = cosine_distance(e.embedding, target), cosine_distance(f.embedding, target)
        rows.append({
            "bytes": len(data), "reference_loss": ref_loss, "exact_loss": e.loss, "bf16_loss": f.loss,
            "exact_loss_rel": abs(e.loss - ref_loss) / abs(ref_loss), "bf16_loss_rel": abs(f.loss - ref_loss) / abs(ref_loss),
            "reference_distance": ref_distance, "exact_distance": distance, "bf16_distance": fast_distance,
            "exact_embedding_rel": float(np.linalg.norm(e.embedding - ref_emb) / np.linalg.norm(ref_emb)),
            "exact_within_audit": within_audit_tolerance(ref_loss, e.loss) and within_audit_tolerance(ref_distance, distance),
            "bf16_within_audit": within_audit_tolerance(ref_loss, f.loss) and within_audit_tolerance(ref_distance, fast_distance),
        })
    ok = all(r["exact_within_audit"] for r in rows)
    if not ok:
        raise RuntimeError(f"exact scores outside the audit tolerance of the float32 reference: {rows}")
    return {"samples": rows, "exact_within_audit": ok}


def official(shape: Shape, device: torch.device, scorer: Scorer, exact_tokens_per_s: float | None) -> dict[str, Any]:
    """The per-request path on one model; `exact_tokens_per_s` is the resident scorer's best rate."""
    from official import load_like_official, write_encrypted

    torch.backends.cuda.matmul.allow_tf32 = True
    plain = scorer.model.to("cpu").save_bytes()
    scorer.model.to(device)
    with tempfile.TemporaryDirectory(prefix="soma-device-") as folder:  # never under $OUT: 4.84 GB
        t0 = time.perf_counter()
        weights = write_encrypted(plain, Path(folder) / "model.bin")
        encrypt_s = time.perf_counter() - t0
        del plain
        samples = [make_samples(1, seed=10 + i, low=shape.official_bytes, high=shape.official_bytes + 1)[0]
                   for i in range(shape.official_requests)]
        stages: dict[str, float] = {}
        evaluate_s = 0.0
        t0 = time.perf_counter()
        for data in samples:
            model = load_like_official(weights, shape.model_config(), device, stages)
            evaluate_s += timed(device, lambda m=model, d=data: evaluate(m, [d], SCORING_SEED))  # fresh noise, as the service
            del model
        seconds = time.perf_counter() - t0
    tokens = sum(map(chunks_of, samples)) * MAX_SEQ_LEN
    tokens_per_s = tokens / seconds
    out: dict[str, Any] = {
        "requests": len(samples), "bytes_per_request": shape.official_bytes, "weights_mib": mib(weights.size),
        "encrypt_s": round(encrypt_s, 2), "seconds_per_request": round(seconds / len(samples), 2),
        "stage_seconds_per_request": {k: round(v / len(samples), 3) for k, v in stages.items()},
        "evaluate_s_per_request": round(evaluate_s / len(samples), 3), "tokens_per_s": round(tokens_per_s, 1),
    }
    if exact_tokens_per_s:
        out["exact_over_official"] = round(exact_tokens_per_s / tokens_per_s, 1)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_process_group(device: torch.device) -> None:
    """One rank, as Ray Train would set it up for a single worker."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0", WORLD_SIZE="1",
                      LOCAL_RANK="0", LOCAL_WORLD_SIZE="1")
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=0, world_size=1)


def training(shape: Shape, device: torch.device, peaks: dict[str, Any]) -> dict[str, Any]:
    """DeepSpeed ZeRO-1, bf16, one process: the trainer's engine and objective without Ray."""
    from soma_ray.scoring.chunks import chunk_samples
    from soma_ray.training.config import TrainingSection
    from soma_ray.training.engine import initialize
    from soma_ray.training.objective import ScoringObjective, random_projection

    init_process_group(device)
    torch.backends.cuda.matmul.allow_tf32 = True
    flops = shape.training_flops()
    biggest = max(m for m, _, _ in shape.train_variants)
    chunks = chunk_samples([(0, make_samples(biggest, seed=20, low=biggest * MAX_SEQ_LEN,
                                             high=biggest * MAX_SEQ_LEN + 1)[0])])
    batch = {k: torch.from_numpy(getattr(chunks, k)).to(device) for k in ("tokens", "positions", "targets")}
    generator = torch.Generator(device=device).manual_seed(0)
    variants = []
    for micro, accum, checkpointing in shape.train_variants:
        label = f"micro={micro} accum={accum}" + (" checkpointing" if checkpointing else "")
        section = TrainingSection(zero_stage=1, precision="bf16", micro_batch=micro, grad_accum=accum,
                                  warmup_steps=1, max_steps=1000, activation_checkpointing=checkpointing)
        engine = None
        try:
            model = random_model(shape, device, seed=7).train()
            engine = initialize(ScoringObjective(model, checkpoint_layers=checkpointing), section, device)
            del model
            micro_batch = [batch[k][:micro] for k in ("tokens", "positions", "targets")]
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)

            def steps(n: int, engine: Any = engine, micro_batch: list[torch.Tensor] = micro_batch,
                      accum: int = accum) -> None:
                for _ in range(n * accum):
                    projection = random_projection(shape.width, generator, device)
                    loss, _, _ = engine(*micro_batch, projection)
                    engine.backward(loss)
                    engine.step()

            steps(2)  # warm-up: allocator, kernels, optimizer state
            seconds = timed(device, lambda: steps(shape.train_steps))
            tokens_per_s = shape.train_steps * accum * micro * MAX_SEQ_LEN / seconds
            row: dict[str, Any] = {
                "variant": label, "micro_batch": micro, "grad_accum": accum, "activation_checkpointing": checkpointing,
                "ms_per_step": round(1000 * seconds / shape.train_steps, 1), "tokens_per_s": round(tokens_per_s),
                "mfu_datasheet": utilisation(tokens_per_s, flops, peaks.get("datasheet_bf16_tflops")),
                "mfu_measured_peak": utilisation(tokens_per_s, flops, peaks.get("bf16_tflops")),
            }
            if device.type == "cuda":
                row["peak_gpu_mib"] = mib(torch.cuda.max_memory_allocated(device))
            log(f"  {label}: {row['tokens_per_s']:,} tokens/s, MFU {row['mfu_datasheet']}")
        except Exception as error:  # noqa: BLE001 - e.g. out of memory at one micro-batch; try the next
            traceback.print_exc()
            row = {"variant": label, "error": f"{type(error).__name__}: {str(error)[:300]}"}
        finally:
            del engine
            release_memory()
        variants.append(row)
    timed_rows = [v for v in variants if "tokens_per_s" in v]
    if not timed_rows:
        raise RuntimeError(f"no training variant ran: {variants}")
    best = max(timed_rows, key=lambda v: v["tokens_per_s"])
    return {"zero_stage": 1, "precision": "bf16", "flops_per_token": flops, "variants": variants, "best": best,
            "tokens_per_s": best["tokens_per_s"], "mfu_datasheet": best["mfu_datasheet"]}


def compiled(scorer: Scorer, peaks: dict[str, Any], rows: int) -> dict[str, Any]:
    """The exact forward under `torch.compile` (the evaluate loop unchanged)."""
    from soma_ray.scoring import forward

    evaluate_module = import_module("soma_ray.scoring.evaluate")  # the module: its `encode` is swapped
    torch.backends.cuda.matmul.allow_tf32 = True
    original = evaluate_module.encode
    evaluate_module.encode = torch.compile(forward.encode, dynamic=True)  # one graph for every row count
    try:
        t0 = time.perf_counter()
        row = scorer.run(f"rows={rows} compiled", rows)
        row["compile_and_first_run_s"] = round(time.perf_counter() - t0, 1)
    finally:
        evaluate_module.encode = original
    row["mfu_measured_peak"] = utilisation(row["tokens_per_s"], scorer.shape.forward_flops(), peaks.get("tf32_tflops"))
    return row


# -- the run ----------------------------------------------------------------------------------------


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The headline figures against the goals."""
    s = doc["sections"]

    def get(section: str, key: str) -> Any:
        return s.get(section, {}).get(key)

    figures = {"exact_tokens_per_s": get("exact", "tokens_per_s"), "prefilter_tokens_per_s": get("prefilter", "tokens_per_s"),
               "exact_over_official": get("official", "exact_over_official"), "training_mfu": get("training", "mfu_datasheet"),
               "training_tokens_per_s": get("training", "tokens_per_s"),
               "exact_within_audit": get("reference", "exact_within_audit")}
    met = {k: (figures[k] is not None and figures[k] >= goal) for k, goal in GOALS.items()}
    return {"device": s.get("environment", {}).get("name"), "figures": figures, "goals_met": met}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="a tiny model on CPU (the test suite runs this)")
    p.add_argument("--out", type=Path, help="where the JSON goes (default: $OUT/device.json, else ./device.json)")
    p.add_argument("--budget-s", type=float, default=420.0, help="skip optional work past this many seconds")
    p.add_argument("--skip", default="", help="comma-separated sections to leave out")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = Path(os.environ.get("OUT", ".")) / "device.json"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    shape = SMOKE if args.smoke else V1
    document_out = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)  # libraries (DeepSpeed's logger, compilers) print to stdout: only the JSON goes there
    faulthandler.dump_traceback_later(args.budget_s + 45, exit=True)  # a hang still tells where
    if shape.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device here; run with --smoke on a CPU machine", file=sys.stderr)
        return 2
    device = torch.device(shape.device)
    skip = set(filter(None, args.skip.split(",")))
    report = Report(args.out, args.budget_s)
    report.doc["shape"] = asdict(shape)
    report.doc["smoke"] = args.smoke

    def run(name: str, work: Callable[[], dict[str, Any]], needs_s: float = 0.0) -> dict[str, Any]:
        if name in skip:
            return {}
        return report.section(name, work, needs_s) or {}

    run("environment", lambda: environment(device))
    peaks = run("ceilings", lambda: ceilings(shape, device))
    scorer = Scorer(shape, device)
    log(f"scoring set: {len(scorer.samples)} samples, {scorer.rows} chunks, model {mib(scorer.model_bytes)} MiB")
    exact = run("exact", lambda: scoring_rates(scorer, peaks, "float32", shape.rows_per_forward,
                                               ("MATH",) if device.type == "cuda" else ()))
    run("reference", lambda: reference_check(scorer))
    run("prefilter", lambda: scoring_rates(scorer, peaks, "bf16", shape.rows_per_forward[:3],
                                           ("FLASH_ATTENTION", "CUDNN_ATTENTION") if device.type == "cuda" else ()))
    run("official", lambda: official(shape, device, scorer, exact.get("tokens_per_s")), needs_s=30)
    best_rows = exact.get("best", {}).get("rows_per_forward", shape.rows_per_forward[0])
    del scorer.model
    release_memory()
    run("training", lambda: training(shape, device, peaks), needs_s=60)
    if not args.smoke and "compile" not in skip:  # last: its compile time is the least certain
        scorer.model = random_model(shape, device, seed=1)
        run("compile", lambda: compiled(scorer, peaks, best_rows), needs_s=150)
    report.doc["summary"] = summary(report.doc)
    report.write()
    print(json.dumps(report.doc, indent=2, default=_json_default), file=document_out, flush=True)
    failed = [name for name, sec in report.doc["sections"].items() if "error" in sec]
    if failed:
        log(f"sections that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
