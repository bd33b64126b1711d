"""Counting model loads across the pool's actors from the columns each stage writes.

Every stage writes, per row and per model column it owns, the tag of the actor that scored it
(`scorer`, a random 63-bit id per actor instance) and how many times that actor has loaded that
model so far (`loads`). The counts only grow, so the largest seen per (actor, model) is that
actor's count, whatever order batches arrive in and however often a retried batch repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadTally:
    """Model loads seen in the pool's output: per (actor tag, model column), the largest count."""

    seen: dict[tuple[int, int], int] = field(default_factory=dict)

    def update(self, batch: dict[str, np.ndarray]) -> None:
        if "scorer" not in batch or "loads" not in batch:
            return
        scorer, loads = np.asarray(batch["scorer"]), np.asarray(batch["loads"])
        for i, j in zip(*np.nonzero(scorer), strict=True):
            key = (int(scorer[i, j]), int(j))
            count = int(loads[i, j])
            if count > self.seen.get(key, 0):
                self.seen[key] = count

    @property
    def total(self) -> int:
        """Loads by every actor of every stage."""
        return sum(self.seen.values())

    @property
    def max_per_actor(self) -> int:
        """The most times one actor loaded one model (1 when nothing thrashes)."""
        return max(self.seen.values(), default=0)
