"""The epoch review's content, from board snapshots, the driver's ledger and the jobs' records:
our wins, misses and near misses; P&L per epoch by role; rivals near our models; assignment share
now and with more stake; pivot alerts and recommended actions. Pure: the caller reads the files
and the chain (`soma_ray.review.run`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from soma_ray.board.diff import latest_targets
from soma_ray.board.landscape import pairwise_distances
from soma_ray.board.simulate import Assignments, Candidate, Simulator
from soma_ray.board.snapshot import ModelRow, Snapshot
from soma_ray.driver.actions import Action, ActionStatus, ClaimPayload, CreateModelPayload, Payload, SubmitPayload
from soma_ray.driver.results import Ledger
from soma_ray.protocol.bond import submission_bond
from soma_ray.protocol.rewards import split_filled
from soma_ray.review.alerts import Alert, EpochShare, Rival, recommend, rival_alerts, share_alert, win_rate_alert
from soma_ray.review.config import ReviewSection
from soma_ray.review.pnl import EpochPnl, pnl_by_epoch, total
from soma_ray.review.records import ComputeUse, NearMiss

SHOWN = 20  # rows of each list in the review (wins, misses, near misses, rivals)
STAKE_STEPS = (1, 2, 4, 8, 16)  # multiples of our stake on the share curve (quarters below it too)


@dataclass(frozen=True)
class Outcome:
    """A target that listed one of our models or that we filled."""

    target_id: str
    epoch: int  # generation epoch (= fill epoch for a fill, §3.4)
    reward_pool: int | None  # None: no snapshot saw the target (our ledger's fill only)
    winner: str | None  # winning model
    submitter: str | None
    how: str  # "we filled it", "our model won (someone else filled it)", "filled by a rival", "not filled"


@dataclass(frozen=True)
class Review:
    epoch: int
    address: str
    ours: tuple[str, ...]  # our model ids (active in the latest snapshot, or created by the ledger)
    settings: ReviewSection
    snapshot: Snapshot  # the latest one read
    history: tuple[Snapshot, ...]
    wins: tuple[Outcome, ...]
    misses: tuple[Outcome, ...]
    failed_submissions: tuple[tuple[str, str], ...]  # (target, error) of our submissions that did not land
    near_misses: tuple[NearMiss, ...]  # closest first
    near_miss_count: int
    pnl: tuple[EpochPnl, ...]
    pnl_total: EpochPnl
    ledger: Ledger  # the ledger's own totals (equal to pnl_total's fields up to `epoch`)
    balance: int | None  # the chain's, when read
    paid_by_others: int  # our shares of wins that others claimed: on chain, not in our ledger (§6)
    shares: tuple[EpochShare, ...]
    rivals: tuple[Rival, ...]
    share_now: Assignments | None
    share_curve: tuple[Assignments, ...]
    alerts: tuple[Alert, ...]
    actions: tuple[str, ...] = field(default_factory=tuple)


def our_models(snapshot: Snapshot, address: str, actions: Sequence[Action[Payload]]) -> tuple[str, ...]:
    created = {a.payload.model_id for a in actions if isinstance(a.payload, CreateModelPayload)
               and a.status == ActionStatus.DONE and a.payload.model_id}
    owned = {m.model_id for m in snapshot.models if m.owner == address}
    return tuple(sorted(owned | {m for m in created if m is not None}))


def our_fills(actions: Sequence[Action[Payload]]) -> dict[str, SubmitPayload]:
    """Our submissions that landed, by target: the ledger's word, whether or not a snapshot saw
    the target filled (a fill claimed before the next snapshot is gone from the board)."""
    return {a.payload.target_id: a.payload for a in actions
            if isinstance(a.payload, SubmitPayload) and a.status == ActionStatus.DONE}


def outcomes(history: Sequence[Snapshot], ours: Collection[str], address: str, last: int,
             fills: Mapping[str, SubmitPayload]) -> tuple[list[Outcome], list[Outcome]]:
    """Our wins (fills of ours, or our model winning) and misses (targets of finished epochs that
    listed our models and went to a rival or to nobody), newest first. `fills` (our ledger's)
    counts as ours even where the board only saw the target open, or never saw it."""
    wins, misses = [], []
    seen = latest_targets(history)
    for t in seen.values():
        we_filled = t.submitter == address or t.target_id in fills
        our_model = t.winning_model_id in ours
        listed = any(m in ours for m in t.model_ids)
        if we_filled:
            fill = fills.get(t.target_id)
            winner = t.winning_model_id or (fill.model_id if fill else None)
            wins.append(Outcome(t.target_id, t.generation_epoch, t.reward_pool, winner, address, "we filled it"))
        elif our_model:
            wins.append(Outcome(t.target_id, t.generation_epoch, t.reward_pool, t.winning_model_id, t.submitter,
                                "our model won (someone else filled it)"))
        elif listed and t.generation_epoch < last:
            how = "filled by a rival" if t.filled else "not filled"
            misses.append(Outcome(t.target_id, t.generation_epoch, t.reward_pool, t.winning_model_id, t.submitter,
                                  how))
    first = min((s.epoch for s in history), default=0)  # the review's window: older fills are not its business
    for target_id, fill in fills.items():
        if target_id not in seen and fill.fill_epoch is not None and fill.fill_epoch >= first:
            # no snapshot saw it (claimed before the next one): the reward is unknown
            wins.append(Outcome(target_id, fill.fill_epoch, None, fill.model_id, address, "we filled it"))
    key = (lambda o: (-o.epoch, o.target_id))
    return sorted(wins, key=key), sorted(misses, key=key)


def paid_by_others(history: Sequence[Snapshot], ours: Collection[str], address: str,
                   actions: Sequence[Action[Payload]]) -> int:
    """What others' claims paid us (the chain pays every share whoever claims, §6): for each filled
    target seen and gone by the last snapshot that our ledger did not claim, the model owner's share
    when our model won, the submitter's share and the bond when we filled it. A fill of ours the
    board saw only open counts too, once a later snapshot no longer holds it (only a claim deletes
    a filled target); one the board never saw has no known reward and is left out."""
    if not history:
        return 0
    ours_claimed = {a.payload.target_id for a in actions
                    if isinstance(a.payload, ClaimPayload) and a.status == ActionStatus.DONE}
    fills = our_fills(actions)
    last = history[-1]
    present = {t.target_id for t in last.targets}
    paid = 0
    for t in latest_targets(history).values():
        fill = fills.get(t.target_id)
        filled = t.filled or (fill is not None and fill.fill_epoch is not None and fill.fill_epoch < last.epoch)
        if not filled or t.target_id in present or t.target_id in ours_claimed:
            continue
        split = split_filled(t.reward_pool, last.params)
        if t.filled:
            our_model_won = t.winning_model_id in ours and t.winning_model_owner == address
        else:  # seen open only: our fill names the winning model (§4.2)
            our_model_won = fill is not None and fill.model_id in ours
        if our_model_won:
            paid += split.model_owner
        if t.submitter == address or fill is not None:
            bond = t.bond_amount if t.filled or fill is None else submission_bond(fill.size, last.params)
            paid += split.submitter + bond
    return paid


def epoch_shares(history: Sequence[Snapshot], ours: Collection[str]) -> list[EpochShare]:
    """Per generation epoch seen: targets, those listing ours, those our models won."""
    counts: dict[int, list[int]] = {}
    epochs = {s.epoch for s in history}
    for t in latest_targets(history).values():
        if t.generation_epoch not in epochs:
            continue  # the epoch before the first snapshot: only partly seen
        row = counts.setdefault(t.generation_epoch, [0, 0, 0])
        row[0] += 1
        if any(m in ours for m in t.model_ids):
            row[1] += 1
            row[2] += t.winning_model_id in ours
    return [EpochShare(e, *counts[e]) for e in sorted(counts)]


def rivals_near(snapshot: Snapshot, ours: Collection[str], address: str, radius: float) -> list[Rival]:
    """Other owners' models within `radius` of one of ours, closest first."""
    models = list(snapshot.models)
    if not models:
        return []
    dist = pairwise_distances(models)
    found: dict[str, Rival] = {}
    for i, mine in enumerate(models):
        if mine.model_id not in ours:
            continue
        for j, other in enumerate(models):
            if other.model_id in ours or other.owner == address or dist[i, j] > radius:
                continue
            rival = Rival(other.model_id, other.owner, other.stake, other.commission_rate, mine.model_id,
                          mine.stake, float(dist[i, j]))
            if other.model_id not in found or rival.distance < found[other.model_id].distance:
                found[other.model_id] = rival
    return sorted(found.values(), key=lambda r: (r.distance, r.model_id))


def _main_model(snapshot: Snapshot, ours: Collection[str]) -> ModelRow | None:
    mine = [m for m in snapshot.models if m.model_id in ours]
    return max(mine, key=lambda m: (m.stake, m.model_id)) if mine else None


def build_review(history: Sequence[Snapshot], *, address: str, actions: Sequence[Action[Payload]], ledger: Ledger,
                 settings: ReviewSection, near_misses: Sequence[NearMiss] = (), compute: Sequence[ComputeUse] = (),
                 balance: int | None = None, epoch: int | None = None) -> Review:
    """The review as of `epoch` (default: the latest snapshot's). `ledger` is the ledger's totals,
    kept to check the per-epoch rows against."""
    if not history:
        raise ValueError("no board snapshots to review")
    last_epoch = max(s.epoch for s in history) if epoch is None else epoch
    history = sorted((s for s in history if s.epoch <= last_epoch), key=lambda s: s.epoch)[-settings.epochs:]
    if not history:
        raise ValueError(f"no board snapshot of epoch {last_epoch} or before")
    snapshot = history[-1]
    actions = [a for a in actions if a.epoch <= last_epoch]
    ours = our_models(snapshot, address, actions)
    wins, misses = outcomes(history, set(ours), address, snapshot.epoch, our_fills(actions))
    failed = tuple((a.payload.target_id, a.error or str(a.status)) for a in actions
                   if isinstance(a.payload, SubmitPayload) and a.status in (ActionStatus.FAILED,
                                                                             ActionStatus.INTERRUPTED))
    misses_near = sorted((m for m in near_misses if m.epoch <= last_epoch), key=lambda m: m.gap)
    rows = pnl_by_epoch(actions, [c for c in compute if c.epoch <= last_epoch], settings.gpu_hour_cost)
    shares = epoch_shares(history, set(ours))
    finished = [s for s in shares if s.epoch < snapshot.epoch]
    rivals = rivals_near(snapshot, set(ours), address, max(settings.rival_distance, 0.0))
    main = _main_model(snapshot, set(ours))
    share_now: Assignments | None = None
    curve: list[Assignments] = []
    if main is not None:
        simulator = Simulator(snapshot, draws=settings.draws)
        me = Candidate(main.vector, main.stake, main.model_id)
        stakes = sorted({main.stake // 4, main.stake // 2, *(main.stake * s for s in STAKE_STEPS)} - {0})
        curve = simulator.stake_curve(me, stakes)
        share_now = next(a for a in curve if a.stake == main.stake)
    alerts = [a for a in (win_rate_alert(finished, settings), share_alert(finished, settings)) if a is not None]
    alerts += rival_alerts(rivals, settings)
    doubled = next((a for a in curve if share_now is not None and a.stake == 2 * share_now.stake), None)
    unclaimed = sum(1 for t in snapshot.targets if t.filled and (t.submitter == address or t.winning_model_id in ours))
    return Review(
        epoch=snapshot.epoch, address=address, ours=ours, settings=settings, snapshot=snapshot,
        history=tuple(history), wins=tuple(wins), misses=tuple(misses), failed_submissions=failed,
        near_misses=tuple(misses_near[:SHOWN]), near_miss_count=len(misses_near), pnl=tuple(rows),
        pnl_total=total(rows), ledger=ledger, balance=balance,
        paid_by_others=paid_by_others(history, set(ours), address, actions), shares=tuple(shares), rivals=tuple(rivals[:SHOWN]),
        share_now=share_now, share_curve=tuple(curve), alerts=tuple(alerts),
        actions=tuple(recommend(alerts, has_model=bool(ours), share_now=share_now, share_doubled=doubled,
                                near_misses=len(misses_near), unclaimed=unclaimed)),
    )
