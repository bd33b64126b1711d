"""Pivot alerts and the actions they suggest: plain functions over the review's figures.

- win rate falling: the last finished epoch's win rate is `win_rate_drop` (absolute) below the
  average of the earlier epochs in which our models were listed;
- a well-staked rival: another owner's model within `rival_distance` of one of ours with at least
  `rival_stake_ratio` × its stake (it takes our targets in the stake-weighted KNN, §3.2);
- assignment share falling: our share of the last finished epoch's targets fell by `share_drop`
  of the earlier epochs' average.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from soma_ray.board.simulate import Assignments
from soma_ray.protocol.constants import to_soma
from soma_ray.review.config import ReviewSection


@dataclass(frozen=True)
class Rival:
    model_id: str
    owner: str
    stake: int
    commission_rate: int
    near: str  # our model it is near
    our_stake: int
    distance: float

    @property
    def stake_ratio(self) -> float:
        return self.stake / self.our_stake if self.our_stake else float("inf")


@dataclass(frozen=True)
class EpochShare:
    """Targets generated in an epoch, and how many listed our models and how many we won."""

    epoch: int
    targets: int
    assigned: int
    wins: int

    @property
    def share(self) -> float:
        return self.assigned / self.targets if self.targets else 0.0

    @property
    def win_rate(self) -> float:
        return self.wins / self.assigned if self.assigned else 0.0


@dataclass(frozen=True)
class Alert:
    kind: str  # "win rate", "rival", "share"
    message: str


def _earlier_mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def win_rate_alert(finished: Sequence[EpochShare], settings: ReviewSection) -> Alert | None:
    listed = [e for e in finished if e.assigned]
    if len(listed) < 2:
        return None
    last, before = listed[-1], _earlier_mean([e.win_rate for e in listed[:-1]])
    if before is not None and last.win_rate <= before - settings.win_rate_drop:
        return Alert("win rate", f"win rate {last.win_rate:.0%} in epoch {last.epoch}, down from {before:.0%} "
                                 f"on average before (alert at a {settings.win_rate_drop:.0%} drop)")
    return None


def share_alert(finished: Sequence[EpochShare], settings: ReviewSection) -> Alert | None:
    if len(finished) < 2:
        return None
    last, before = finished[-1], _earlier_mean([e.share for e in finished[:-1] if e.targets])
    if before and last.share <= before * (1 - settings.share_drop):
        return Alert("share", f"our models were listed on {last.share:.0%} of epoch {last.epoch}'s targets, "
                              f"down from {before:.0%} on average before (alert at a {settings.share_drop:.0%} fall)")
    return None


def rival_alerts(rivals: Sequence[Rival], settings: ReviewSection) -> list[Alert]:
    return [
        Alert("rival", f"model {r.model_id[:10]}… of {r.owner[:10]}… sits {r.distance:.3f} from our "
                       f"{r.near[:10]}… with {to_soma(r.stake):g} SOMA staked ({r.stake_ratio:.1f}× ours)")
        for r in rivals
        if r.distance <= settings.rival_distance and r.stake_ratio >= settings.rival_stake_ratio
    ]


def recommend(alerts: Sequence[Alert], *, has_model: bool, share_now: Assignments | None,
              share_doubled: Assignments | None, near_misses: int, unclaimed: int) -> list[str]:
    """What to do next, most pressing first (rules of thumb, each tied to a figure of the review)."""
    kinds = {a.kind for a in alerts}
    out = []
    if not has_model:
        out.append("Create and commit a model: without one, only the submitter's share of rewards is open to us.")
    if ("rival" in kinds or "share" in kinds) and share_now is not None and share_doubled is not None:
        out.append(f"Add stake: at {to_soma(share_doubled.stake):g} SOMA the simulator lists our model on "
                   f"{share_doubled.share:.0%} of targets (now {share_now.share:.0%}, "
                   f"{share_now.expected_per_epoch:.1f} per epoch), or move it away from the crowded region "
                   "(retrain on other data, commit an update).")
    if "win rate" in kinds:
        out.append("Win rate is falling: rivals fill our model's targets first; score more data per epoch "
                   "or train the model further on the data we submit.")
    if near_misses:
        out.append(f"{near_misses} near miss(es) recorded: more samples of the same kind may cross the "
                   "threshold; raise submit.max_samples.")
    if unclaimed:
        out.append(f"{unclaimed} filled target(s) of ours are not claimed yet: `soma-ray claim` once their "
                   "audit window has closed.")
    if not out:
        out.append("Nothing pressing: keep the current stake and model.")
    return out
