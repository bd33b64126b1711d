"""What changed between two snapshots, and the threshold and hit history over many."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from soma_ray.board.snapshot import Snapshot, TargetRow
from soma_ray.protocol.assignment import cosine_distances


@dataclass(frozen=True)
class Change:
    """One model's value before and after (stake or commission rate)."""

    model_id: str
    before: int
    after: int


@dataclass(frozen=True)
class Move:
    """A model whose embedding changed (an update revealed, §5), and how far it moved."""

    model_id: str
    distance: float  # cosine distance between the old and the new embedding


@dataclass(frozen=True)
class EpochDiff:
    before_epoch: int
    after_epoch: int
    entrants: tuple[str, ...]  # active now, not before
    exits: tuple[str, ...]  # active before, not now
    stake_changes: tuple[Change, ...]
    commission_changes: tuple[Change, ...]
    moved: tuple[Move, ...]
    threshold: tuple[float, float]
    new_targets: tuple[str, ...]
    filled: tuple[str, ...]  # filled now, not filled (or not seen) before
    claimed: tuple[str, ...]  # filled before and gone now: a claim deletes the target (§3.4)


def diff(before: Snapshot, after: Snapshot) -> EpochDiff:
    old = {m.model_id: m for m in before.models}
    new = {m.model_id: m for m in after.models}
    both = sorted(old.keys() & new.keys())
    old_targets = {t.target_id: t for t in before.targets}
    new_targets = {t.target_id: t for t in after.targets}
    moved = []
    for model_id in both:
        a, b = old[model_id], new[model_id]
        if a.embedding != b.embedding:
            moved.append(Move(model_id, float(cosine_distances(a.vector, b.vector[None, :])[0])))
    return EpochDiff(
        before_epoch=before.epoch,
        after_epoch=after.epoch,
        entrants=tuple(sorted(new.keys() - old.keys())),
        exits=tuple(sorted(old.keys() - new.keys())),
        stake_changes=tuple(
            Change(i, old[i].stake, new[i].stake) for i in both if old[i].stake != new[i].stake
        ),
        commission_changes=tuple(
            Change(i, old[i].commission_rate, new[i].commission_rate)
            for i in both
            if old[i].commission_rate != new[i].commission_rate
        ),
        moved=tuple(moved),
        threshold=(before.info.distance_threshold, after.info.distance_threshold),
        new_targets=tuple(sorted(new_targets.keys() - old_targets.keys())),
        filled=tuple(sorted(
            i for i, t in new_targets.items() if t.filled and not (i in old_targets and old_targets[i].filled)
        )),
        claimed=tuple(sorted(i for i, t in old_targets.items() if t.filled and i not in new_targets)),
    )


@dataclass(frozen=True)
class HistoryPoint:
    """The difficulty state recorded in one snapshot, and the fills seen for that epoch."""

    epoch: int
    distance_threshold: float
    reward_per_target: int
    hits_ema: int
    hits_this_epoch: int  # as the snapshot read it (the counter restarts at each epoch change)
    fills: int  # targets seen filled in this epoch, across all snapshots


def latest_targets(snapshots: Sequence[Snapshot]) -> dict[str, TargetRow]:
    """Each target's latest view across snapshots (a filled target keeps its fill after claim)."""
    latest: dict[str, TargetRow] = {}
    for snapshot in sorted(snapshots, key=lambda s: s.epoch):
        latest.update((t.target_id, t) for t in snapshot.targets)
    return latest


def history(snapshots: Sequence[Snapshot]) -> list[HistoryPoint]:
    fills: dict[int, int] = {}
    for target in latest_targets(snapshots).values():
        if target.fill_epoch is not None:
            fills[target.fill_epoch] = fills.get(target.fill_epoch, 0) + 1
    return [
        HistoryPoint(
            epoch=s.epoch,
            distance_threshold=s.info.distance_threshold,
            reward_per_target=s.info.reward_per_target,
            hits_ema=s.info.hits_ema,
            hits_this_epoch=s.info.hits_this_epoch,
            fills=fills.get(s.epoch, 0),
        )
        for s in sorted(snapshots, key=lambda s: s.epoch)
    ]
