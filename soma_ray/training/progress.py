"""Training progress: a log line, the figures on the job's display (relayed from Ray Train's
controller) and Ray metrics for the dashboard."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from soma_ray.display import Display, TrainingFigures
from soma_ray.display.figures import Eta

log = logging.getLogger("soma_ray.train")


@dataclass
class Throughput:
    """Tokens per second over the steps since the last reading."""

    started: float = field(default_factory=time.perf_counter)
    tokens: int = 0

    def add(self, tokens: int) -> None:
        self.tokens += tokens

    def read(self) -> float:
        now = time.perf_counter()
        rate = self.tokens / max(now - self.started, 1e-9)
        self.started, self.tokens = now, 0
        return rate


class TrainMetrics:
    """Ray metrics (`ray.util.metrics`) for the dashboard; created on rank 0 only."""

    def __init__(self, run: str) -> None:
        from ray.util.metrics import Counter, Gauge

        tags = {"run": run}
        self._tokens = Counter("soma_ray_train_tokens", "tokens trained on", tag_keys=("run",))
        self._gauges = {
            name: Gauge(f"soma_ray_train_{name}", description, tag_keys=("run",))
            for name, description in (
                ("tokens_per_second", "training tokens per second, all workers"),
                ("mfu", "model FLOPs utilisation (0-1)"),
                ("loss", "training loss (CE + 0.02 SIGReg, scorer normalisation)"),
                ("heldout_loss", "exact-scorer loss on the held-out set"),
                ("step", "optimizer step"),
            )
        }
        for metric in (self._tokens, *self._gauges.values()):
            metric.set_default_tags(tags)

    def record(self, metrics: dict[str, Any], new_tokens: int) -> None:
        self._tokens.inc(new_tokens)
        for name, gauge in self._gauges.items():
            value = metrics.get(name)
            if isinstance(value, (int, float)) and math.isfinite(value):
                gauge.set(float(value))


def progress_line(metrics: dict[str, Any], max_steps: int) -> str:
    parts = [f"step {metrics['step']}/{max_steps}", f"loss {metrics['loss']:.4f}",
             f"ce {metrics['ce']:.4f}", f"sigreg {metrics['sigreg']:.4f}", f"lr {metrics['lr']:.2e}",
             f"{metrics['tokens_per_second']:,.0f} tokens/s"]
    if metrics.get("mfu") is not None:
        parts.append(f"MFU {100 * metrics['mfu']:.1f}%")
    if "heldout_loss" in metrics:
        parts.append(f"held-out loss {metrics['heldout_loss']:.5f}")
    return " | ".join(parts)


def figures_of(metrics: dict[str, Any], total: int, eta_s: float | None) -> TrainingFigures:
    """What the display shows of one report (rank 0's metrics)."""
    heldout, mfu_value = metrics.get("heldout_loss"), metrics.get("mfu")
    return TrainingFigures(
        step=int(metrics["step"]), total=total, loss=float(metrics["loss"]),
        heldout_loss=float(heldout) if heldout is not None else None,
        tokens_per_s=float(metrics["tokens_per_second"]),
        mfu=float(mfu_value) if mfu_value is not None else None, eta_s=eta_s,
    )


def _report_callback(queue: Any) -> Any:
    """A Ray Train callback (it runs in the run's controller, not here) that passes rank 0's
    metrics of every report to `queue`."""
    from ray.train import UserCallback

    class ToQueue(UserCallback):
        def __init__(self, queue: Any) -> None:
            self.queue = queue

        def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
            if metrics:
                try:
                    self.queue.put_nowait(dict(metrics[0]))
                except Exception:  # noqa: BLE001 - a full or gone queue only costs a display line
                    pass

    return ToQueue(queue)


class TrainingRelay:
    """Training figures from the controller to this process's display, while `fit()` runs:
    `callback` goes in the run's callbacks; a thread feeds the display until `stop()`."""

    def __init__(self, display: Display, total: int, clock: Any = time.monotonic) -> None:
        from ray.util.queue import Queue

        self.display, self.total, self.clock = display, total, clock
        self.queue = Queue(maxsize=1000, actor_options={"num_cpus": 0})
        self.callback = _report_callback(self.queue)
        self.eta = Eta(total)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="soma-ray-training-display", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        from ray.util.queue import Empty

        while True:
            try:
                metrics = self.queue.get(timeout=0.5)
            except Empty:
                if self._stop.is_set():
                    return
                continue
            except Exception:  # noqa: BLE001 - the queue actor is gone: nothing more to show
                return
            self.take(metrics)

    def take(self, metrics: dict[str, Any]) -> None:
        eta = self.eta.read(int(metrics["step"]), self.clock())
        self.display.show(figures_of(metrics, self.total, eta))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.queue.shutdown()
