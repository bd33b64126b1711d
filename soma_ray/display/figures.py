"""The figures a job shows, typed, and the one line each becomes (both renderers print it)."""

from __future__ import annotations

import math
from dataclasses import dataclass


def format_duration(seconds: float) -> str:
    """`1h02m`, `3m05s`, `42s`."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _eta(eta_s: float | None) -> list[str]:
    return [f"ETA {format_duration(eta_s)}"] if eta_s is not None and math.isfinite(eta_s) else []


@dataclass(frozen=True)
class ScoringFigures:
    """The submitter: samples and scored tokens per second, hits, fills, best distance; an ETA
    only when the source is bounded (`submit.max_samples`)."""

    samples: int
    samples_per_s: float
    scored_tokens_per_s: float
    hits: int
    fills: int
    best_distance: float | None
    eta_s: float | None = None

    def line(self) -> str:
        best = f"{self.best_distance:.4f}" if self.best_distance is not None else "-"
        parts = [f"scoring: {self.samples} samples ({self.samples_per_s:.1f}/s)",
                 f"{self.scored_tokens_per_s:,.0f} scored tokens/s", f"{self.hits} hits", f"{self.fills} fills",
                 f"best distance {best}", *_eta(self.eta_s)]
        return " | ".join(parts)


@dataclass(frozen=True)
class TrainingFigures:
    """Training: step of total, loss, held-out loss (exact scorer), tokens/s, MFU, ETA."""

    step: int
    total: int
    loss: float
    heldout_loss: float | None
    tokens_per_s: float
    mfu: float | None
    eta_s: float | None = None

    def line(self) -> str:
        parts = [f"training: step {self.step}/{self.total}", f"loss {self.loss:.4f}"]
        if self.heldout_loss is not None:
            parts.append(f"held-out {self.heldout_loss:.4f}")
        parts.append(f"{self.tokens_per_s:,.0f} tokens/s")
        if self.mfu is not None:
            parts.append(f"MFU {100 * self.mfu:.1f}%")
        return " | ".join([*parts, *_eta(self.eta_s)])


Figures = ScoringFigures | TrainingFigures


class Eta:
    """Seconds left from progress readings (done of total) at the average rate since the first."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.first: tuple[float, int] | None = None

    def read(self, done: int, now: float) -> float | None:
        if self.total is None:
            return None
        if self.first is None:
            self.first = (now, done)
            return None
        started, done0 = self.first
        if done <= done0 or now <= started:
            return None
        return max(0, self.total - done) * (now - started) / (done - done0)
