"""What a candidate model could earn per epoch, two ways side by side:

    expected = E[assignments per epoch] × P(win | assigned) × reward per target − costs

with E[assignments] from the assignment simulator and P(win | assigned) estimated from history
(the candidate's own record when it is an existing model that has been assigned targets, else the
network's: wins over model slots of targets whose epoch is over). The reward per target is the
whole pool: what a model owner gets who fills and claims its own model's targets (§6).

Beside it, the guide's simpler ratio, Σ nearby reward ÷ (nearby models + Σ nearby stake), in SOMA,
the candidate counted among the nearby models: "nearby" means within `radius` cosine distance of the candidate (1.0 by default: its side of the
sphere, since random targets sit near distance 1 from everything).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from soma_ray.board.diff import latest_targets
from soma_ray.board.simulate import Assignments, Candidate, Simulator
from soma_ray.board.snapshot import Snapshot
from soma_ray.protocol.assignment import cosine_distances
from soma_ray.protocol.constants import to_soma

NEARBY_RADIUS = 1.0


@dataclass(frozen=True)
class WinRate:
    wins: int
    assigned: int  # model slots: one per target listing the model (or per model listed, network-wide)
    source: str  # "model" or "network"

    @property
    def rate(self) -> float:
        return self.wins / self.assigned if self.assigned else 0.0


def win_rate(snapshots: Sequence[Snapshot], model_id: str | None = None) -> WinRate:
    """P(win | assigned) from the targets of finished epochs: the model's own when it has any,
    else the network's."""
    if not snapshots:
        return WinRate(0, 0, "network")
    last = max(s.epoch for s in snapshots)
    done = [t for t in latest_targets(snapshots).values() if t.generation_epoch < last]
    if model_id is not None:
        mine = [t for t in done if model_id in t.model_ids]
        if mine:
            return WinRate(sum(t.winning_model_id == model_id for t in mine), len(mine), "model")
    return WinRate(sum(t.filled for t in done), sum(len(t.model_ids) for t in done), "network")


def guide_ratio(snapshot: Snapshot, candidate: Candidate, radius: float = NEARBY_RADIUS) -> float:
    """Σ reward of nearby open targets ÷ (nearby models + Σ their stake), all in SOMA, the
    candidate counted among the models (so the ratio is what it would face once in)."""
    embedding = np.asarray(candidate.embedding, dtype=np.float32)
    targets = snapshot.open_targets()
    rewards = sum(
        t.reward_pool for t in targets if cosine_distances(embedding, t.vector[None, :])[0] <= radius
    )
    others = [m for m in snapshot.models if m.model_id != candidate.model_id]
    near = [m for m in others if cosine_distances(embedding, m.vector[None, :])[0] <= radius]
    stake = candidate.stake + sum(m.stake for m in near)
    return to_soma(rewards) / (len(near) + 1 + to_soma(stake))


def target_ratio(reward_pool: int, model_ids: Sequence[str], stakes: Mapping[str, int], ours: Collection[str],
                 min_stake: int) -> float:
    """The guide's ratio for one target: its reward ÷ (us + the rival models it lists + their stake),
    in SOMA. Our own models do not compete with us; a listed model missing from `stakes` (no longer
    active) counts with `min_stake`."""
    rivals = [m for m in model_ids if m not in ours]
    stake = sum(stakes.get(m, min_stake) for m in rivals)
    return to_soma(reward_pool) / (1 + len(rivals) + to_soma(stake))


@dataclass(frozen=True)
class Opportunity:
    assignments: Assignments
    p_win: WinRate
    reward_per_target: int
    costs_per_epoch: int
    guide_ratio: float

    @property
    def expected_reward(self) -> float:
        """Shannons per epoch, after costs."""
        gross = self.assignments.expected_per_epoch * self.p_win.rate * self.reward_per_target
        return gross - self.costs_per_epoch


def opportunity(simulator: Simulator, candidate: Candidate, history: Sequence[Snapshot], *,
                costs_per_epoch: int = 0, radius: float = NEARBY_RADIUS) -> Opportunity:
    """The candidate against the simulator's snapshot, P(win | assigned) from `history`."""
    snapshot = simulator.snapshot
    return Opportunity(
        assignments=simulator.run(candidate),
        p_win=win_rate(history, candidate.model_id),
        reward_per_target=snapshot.info.reward_per_target,
        costs_per_epoch=costs_per_epoch,
        guide_ratio=guide_ratio(snapshot, candidate, radius),
    )
