"""Progress of a submission run: rates, hits, best distance, near misses."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

log = logging.getLogger("soma_ray.submit")


@dataclass
class SubmitReport:
    samples: int = 0
    scored_tokens: int = 0  # chunks × 1024 × models, as the benchmark counts them
    hits: int = 0
    fills: list[str] = field(default_factory=list)  # target ids this run filled
    dropped_targets: int = 0
    best_distance: float = math.inf
    started: float = field(default_factory=time.monotonic)
    _last_line: float = 0.0

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        best = f"{self.best_distance:.4f}" if math.isfinite(self.best_distance) else "-"
        return (
            f"{self.samples} samples ({self.samples / elapsed:.1f}/s), "
            f"{self.scored_tokens / elapsed:,.0f} scored tokens/s, {self.hits} hits, "
            f"{len(self.fills)} fills, best distance {best}"
        )

    def maybe_log(self, interval_s: float) -> None:
        now = time.monotonic()
        if now - self._last_line >= interval_s:
            self._last_line = now
            log.info("%s", self.line())
