"""Our results per epoch from the snapshots: targets that listed our models, the ones we won,
what we earned (by §6's split, in the fill epoch, claimed or not) and the P&L after costs.

A target can only be filled in the epoch it was generated (§3.4), so "assigned in E" and
"won in E" count the same targets.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from soma_ray.board.diff import latest_targets
from soma_ray.board.snapshot import Snapshot
from soma_ray.protocol.rewards import split_filled


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    assigned: int  # targets of the epoch listing at least one of our models
    wins: int  # of those, won by one of our models
    income: int  # shannons: submitter share of our submissions + model-owner share of our models' wins
    costs: int

    @property
    def pnl(self) -> int:
        return self.income - self.costs

    @property
    def win_rate(self) -> float:
        return self.wins / self.assigned if self.assigned else 0.0


def our_epochs(snapshots: Sequence[Snapshot], *, models: Collection[str], addresses: Collection[str],
               costs: Mapping[int, int] | None = None) -> list[EpochResult]:
    """One result per snapshot epoch (and per epoch named in `costs`), in order."""
    if not snapshots:
        return []
    params = max(snapshots, key=lambda s: s.epoch).params
    costs = costs or {}
    epochs = sorted({s.epoch for s in snapshots} | set(costs))
    assigned = dict.fromkeys(epochs, 0)
    won = dict.fromkeys(epochs, 0)
    income = dict.fromkeys(epochs, 0)
    for t in latest_targets(snapshots).values():
        epoch = t.generation_epoch
        if epoch not in assigned:
            continue
        if any(m in models for m in t.model_ids):
            assigned[epoch] += 1
            won[epoch] += t.winning_model_id in models
        if t.filled:
            split = split_filled(t.reward_pool, params)
            income[epoch] += split.submitter * (t.submitter in addresses)
            income[epoch] += split.model_owner * (t.winning_model_owner in addresses)
    return [EpochResult(e, assigned[e], won[e], income[e], costs.get(e, 0)) for e in epochs]
