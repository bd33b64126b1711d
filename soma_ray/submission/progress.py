"""Progress of a submission run: rates, hits, best distance, near misses; a log line, the figures
on the job's display and Ray metrics for the dashboard."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from soma_ray.display import ScoringFigures
from soma_ray.scoring.loads import LoadTally

log = logging.getLogger("soma_ray.submit")


@dataclass
class SubmitReport:
    samples: int = 0
    scored_tokens: int = 0  # chunks × 1024 × models, as the benchmark counts them
    hits: int = 0
    fills: list[str] = field(default_factory=list)  # target ids this run filled
    dropped_targets: int = 0
    best_distance: float = math.inf
    loads: LoadTally = field(default_factory=LoadTally)  # model loads across the pool's actors
    started: float = field(default_factory=time.monotonic)
    _last_line: float = 0.0

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        best = f"{self.best_distance:.4f}" if math.isfinite(self.best_distance) else "-"
        return (
            f"{self.samples} samples ({self.samples / elapsed:.1f}/s), "
            f"{self.scored_tokens_per_second():,.0f} scored tokens/s, {self.hits} hits, "
            f"{len(self.fills)} fills, best distance {best}, "
            f"model loads {self.loads.total} (per model per actor max {self.loads.max_per_actor})"
        )

    def figures(self, max_samples: int | None = None) -> ScoringFigures:
        """What the display shows; an ETA when the source is bounded (`submit.max_samples`)."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.samples / elapsed
        eta = (max_samples - self.samples) / rate if max_samples is not None and rate > 0 else None
        return ScoringFigures(
            samples=self.samples, samples_per_s=rate, scored_tokens_per_s=self.scored_tokens_per_second(),
            hits=self.hits, fills=len(self.fills),
            best_distance=self.best_distance if math.isfinite(self.best_distance) else None,
            eta_s=max(0.0, eta) if eta is not None else None,
        )

    def counts(self) -> dict[str, int]:
        return {"samples": self.samples, "scored_tokens": self.scored_tokens, "hits": self.hits,
                "fills": len(self.fills), "model_loads": self.loads.total}

    def scored_tokens_per_second(self) -> float:
        return self.scored_tokens / max(time.monotonic() - self.started, 1e-9)

    def maybe_log(self, interval_s: float) -> None:
        now = time.monotonic()
        if now - self._last_line >= interval_s:
            self._last_line = now
            log.info("%s", self.line())


class ScoringMetrics:
    """Ray metrics (`ray.util.metrics`) of a submitter job, recorded as each batch is taken."""

    def __init__(self, network: str) -> None:
        from ray.util.metrics import Counter, Gauge

        keys = ("network",)
        self._counters = {  # keyed as SubmitReport.counts()
            "samples": Counter("soma_ray_score_samples", "samples scored", tag_keys=keys),
            "scored_tokens": Counter("soma_ray_score_tokens", "tokens scored (chunks x 1024 x models)", tag_keys=keys),
            "hits": Counter("soma_ray_score_hits", "hits: samples within some target's threshold", tag_keys=keys),
            "fills": Counter("soma_ray_score_fills", "targets this job filled", tag_keys=keys),
            "model_loads": Counter("soma_ray_score_model_loads", "models loaded by the pool's actors", tag_keys=keys),
        }
        self._max_loads = Gauge("soma_ray_score_max_loads_per_actor_model",
                                "most loads of one model by one actor (1 when nothing thrashes)", tag_keys=keys)
        self._rate = Gauge("soma_ray_score_tokens_per_second", "scored tokens per second since the job began",
                           tag_keys=keys)
        for metric in (*self._counters.values(), self._rate, self._max_loads):
            metric.set_default_tags({"network": network})
        self._recorded = dict.fromkeys(self._counters, 0)

    def record(self, report: SubmitReport) -> None:
        """Add what the report gained since the last call (a batch that failed half-way is
        counted with the next one)."""
        now = report.counts()
        for key, counter in self._counters.items():
            if now[key] > self._recorded[key]:
                counter.inc(now[key] - self._recorded[key])
        self._recorded = now
        self._rate.set(report.scored_tokens_per_second())
        self._max_loads.set(report.loads.max_per_actor)
