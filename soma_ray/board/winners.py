"""Who wins: from the filled (and claimed) targets seen across snapshots, the wins per model and
per owner, how concentrated the submitters are, and the rewards paid out (split by §6's rule)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from soma_ray.board.diff import latest_targets
from soma_ray.board.snapshot import Snapshot
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.protocol.rewards import split_filled


@dataclass(frozen=True)
class Win:
    target_id: str
    fill_epoch: int
    model_id: str
    owner: str | None  # the winning model's owner (None if the board never saw it)
    submitter: str | None
    reward_pool: int
    claimed: bool  # seen filled, then gone from a later snapshot (a claim deletes the target)


def wins(snapshots: Sequence[Snapshot]) -> list[Win]:
    """Every filled target the snapshots saw, by fill epoch then id."""
    ordered = sorted(snapshots, key=lambda s: s.epoch)
    present_at_end = {t.target_id for t in ordered[-1].targets} if ordered else set()
    found = [
        Win(
            target_id=t.target_id,
            fill_epoch=t.fill_epoch if t.fill_epoch is not None else t.generation_epoch,
            model_id=t.winning_model_id,
            owner=t.winning_model_owner,
            submitter=t.submitter,
            reward_pool=t.reward_pool,
            claimed=t.target_id not in present_at_end,
        )
        for t in latest_targets(ordered).values()
        if t.winning_model_id is not None
    ]
    return sorted(found, key=lambda w: (w.fill_epoch, w.target_id))


@dataclass(frozen=True)
class Payouts:
    """Rewards of claimed wins in shannons, per payee address (§6); claimers are not on the board."""

    to_submitters: dict[str, int]
    to_model_owners: dict[str, int]
    to_claimers: int
    unclaimed: int  # reward pools of filled targets still waiting for their claim

    @property
    def total(self) -> int:
        return sum(self.to_submitters.values()) + sum(self.to_model_owners.values()) + self.to_claimers


@dataclass(frozen=True)
class WinnerStats:
    fills: int
    wins_per_model: dict[str, int]
    wins_per_owner: dict[str, int]
    fills_per_submitter: dict[str, int]
    top_submitter_share: float  # the busiest submitter's share of fills (0 with none)
    submitter_hhi: float  # Herfindahl index of submitter shares: 1 = one submitter, 1/n = n equal ones
    payouts: Payouts


def payouts(found: Sequence[Win], params: ProtocolParams) -> Payouts:
    submitters: Counter[str] = Counter()
    owners: Counter[str] = Counter()
    claimers = unclaimed = 0
    for win in found:
        if not win.claimed:
            unclaimed += win.reward_pool
            continue
        split = split_filled(win.reward_pool, params)
        submitters[win.submitter or "?"] += split.submitter
        owners[win.owner or "?"] += split.model_owner
        claimers += split.claimer
    return Payouts(dict(submitters), dict(owners), claimers, unclaimed)


def winner_stats(found: Sequence[Win], params: ProtocolParams) -> WinnerStats:
    by_submitter = Counter(w.submitter or "?" for w in found)
    shares = [n / len(found) for n in by_submitter.values()] if found else []
    return WinnerStats(
        fills=len(found),
        wins_per_model=dict(Counter(w.model_id for w in found)),
        wins_per_owner=dict(Counter(w.owner or "?" for w in found)),
        fills_per_submitter=dict(by_submitter),
        top_submitter_share=max(shares, default=0.0),
        submitter_hhi=sum(s * s for s in shares),
        payouts=payouts(found, params),
    )
