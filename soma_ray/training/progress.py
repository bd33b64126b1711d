"""Training progress: a log line a person can follow and Ray metrics for the dashboard."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

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
