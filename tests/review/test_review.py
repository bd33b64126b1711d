"""The epoch review against the driver's ledger and the chain's own records (its transactions,
balances and targets), on a multi-epoch game with rivals; its files as real pictures and pages."""

from __future__ import annotations

import asyncio
import base64
import re
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from soma_ray.board.snapshot import Snapshot, TargetRow
from soma_ray.driver.actions import ClaimPayload, SubmitPayload
from soma_ray.protocol.constants import SHANNONS_PER_SOMA
from soma_ray.review.alerts import EpochShare, rival_alerts, share_alert, win_rate_alert
from soma_ray.review.build import Review
from soma_ray.review.config import ReviewSection
from soma_ray.review.pnl import as_ledger
from soma_ray.review.render import PICTURES, write_review
from soma_ray.review.run import record_snapshot, review_of
from tests.board.test_plots import assert_picture
from tests.review.conftest import Played

PNG = b"\x89PNG\r\n\x1a\n"
COST = 0.25  # SOMA per GPU hour


def review(played: Played, **settings: object) -> Review:
    """As `soma-ray review` does: a snapshot of the board now (after our last fills), then the review."""
    asyncio.run(record_snapshot(played.sim, played.driver.state.path))
    balance = asyncio.run(played.sim.balance(played.address))
    return review_of(played.driver.state, played.address,
                     ReviewSection.model_validate({"gpu_hour_cost": COST, **settings}), balance=balance)


def chain_by_epoch(played: Played) -> dict[int, dict[str, int]]:
    """Per epoch, from the network's own transaction log: our fees, submissions and claims that landed."""
    found: dict[int, dict[str, int]] = {}
    with sqlite3.connect(played.sim.settings.path / "sim.db") as conn:
        rows = conn.execute("SELECT epoch, kind, ok, fee FROM txs WHERE sender = ? AND seq >= ?",
                            (played.address, played.first_seq)).fetchall()
    for epoch, kind, ok, fee in rows:
        row = found.setdefault(epoch, {"fees": 0, "submissions": 0, "claims": 0})
        row["fees"] += fee or 0
        row["submissions"] += kind == "SubmitData" and bool(ok)
        row["claims"] += kind == "ClaimRewards" and bool(ok)
    return found


def test_pnl_equals_the_ledger_and_the_chain(played: Played) -> None:
    r = review(played)
    ledger = played.driver.ledger()
    assert as_ledger(r.pnl_total, ledger.start_balance) == ledger  # every total, to the shannon
    chain = chain_by_epoch(played)
    for row in r.pnl:
        seen = chain.get(row.epoch, {"fees": 0, "submissions": 0, "claims": 0})
        assert (row.fees, row.submissions, row.claims) == (seen["fees"], seen["submissions"], seen["claims"])
    assert sum(c["fees"] for c in chain.values()) == r.pnl_total.fees
    # the chain's balance: what the ledger explains plus the shares others' claims paid us
    assert r.balance == asyncio.run(played.sim.balance(played.address))
    assert r.paid_by_others > 0  # rivals claimed targets our model won: the check is not empty
    assert ledger.expected_balance + r.paid_by_others == r.balance
    assert r.pnl_total.pnl == ledger.rewards - ledger.fees - r.pnl_total.compute_cost


def test_compute_cost_is_gpu_hours_times_the_price(played: Played) -> None:
    r = review(played)
    assert r.pnl_total.gpu_hours == pytest.approx(played.compute.gpu_hours) == pytest.approx(1.0)
    assert r.pnl_total.compute_cost == round(COST * SHANNONS_PER_SOMA)
    unpriced = review(played, gpu_hour_cost=None)
    assert unpriced.pnl_total.compute_cost == 0 and unpriced.pnl_total.gpu_hours == pytest.approx(1.0)


def test_wins_misses_and_near_misses_are_the_chains(played: Played) -> None:
    r = review(played)
    assert r.ours == (played.model_id,)
    ours_filled = {o.target_id for o in r.wins if o.how == "we filled it"}
    assert ours_filled == set(played.fills)  # every fill the chain recorded for us, nothing else
    for o in r.wins:
        assert o.submitter == played.address or o.winner == played.model_id
    for o in r.misses:
        assert o.winner != played.model_id and o.submitter != played.address and o.epoch < r.epoch
    assert any(o.how == "filled by a rival" for o in r.misses)  # the rivals took some of ours
    assert r.near_misses == (played.near_miss,) and r.near_miss_count == 1
    shares = {s.epoch: s for s in r.shares}
    assert sum(s.wins for s in shares.values()) == sum(o.winner == played.model_id for o in r.wins)


def test_rival_alert_follows_its_thresholds(played: Played) -> None:
    everyone = review(played, rival_distance=2.0, rival_stake_ratio=0.0)
    assert everyone.rivals and all(r.owner != played.address for r in everyone.rivals)
    assert len([a for a in everyone.alerts if a.kind == "rival"]) == len(everyone.rivals)
    assert any(a.startswith("Add stake") for a in everyone.actions)
    nobody = review(played, rival_distance=2.0, rival_stake_ratio=1e9)
    assert not [a for a in nobody.alerts if a.kind == "rival"]


def test_falling_win_rate_and_share_raise_alerts() -> None:
    settings = ReviewSection(win_rate_drop=0.2, share_drop=0.3)
    steady = [EpochShare(1, 10, 5, 3), EpochShare(2, 10, 5, 3), EpochShare(3, 10, 5, 3)]
    assert win_rate_alert(steady, settings) is None and share_alert(steady, settings) is None
    falling = [*steady[:2], EpochShare(3, 10, 5, 1)]  # 60% → 20%
    alert = win_rate_alert(falling, settings)
    assert alert is not None and "20%" in alert.message and "60%" in alert.message
    fewer = [*steady[:2], EpochShare(3, 10, 3, 2)]  # 50% → 30% of targets: a 40% fall
    assert share_alert(fewer, settings) is not None
    assert share_alert(fewer, ReviewSection(share_drop=0.5)) is None
    assert rival_alerts([], settings) == []


def test_files_pictures_and_a_self_contained_page(played: Played, tmp_path: Path) -> None:
    out = write_review(review(played), tmp_path / "review")
    for name, _ in PICTURES:
        assert_picture(out / name)
    text = (out / "review.md").read_text()
    assert all(f"]({name})" in text for name, _ in PICTURES)
    page = (out / "review.html").read_text()
    sources = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(sources) == len(PICTURES)
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        decoded = base64.b64decode(source.split(",", 1)[1], validate=True)
        assert decoded[:8] == PNG
        picture = tmp_path / "decoded.png"
        picture.write_bytes(decoded)
        assert_picture(picture)
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page)  # nothing fetched from elsewhere
    write_review(review(played), out)  # written again: replaced whole
    assert sorted(p.name for p in out.iterdir()) == sorted([n for n, _ in PICTURES] + ["review.html", "review.md"])


def test_our_fills_count_when_no_snapshot_saw_them_filled(played: Played) -> None:
    """A fill claimed before the next snapshot is never seen filled on the board (the driver's
    snapshot races the epoch's claims): the ledger's word makes it ours all the same."""
    from dataclasses import replace

    from soma_ray.review.build import build_review, paid_by_others

    r = review(played)
    actions = played.driver.state.actions()

    def without(history: Sequence[Snapshot], drop: Callable[[TargetRow], bool]) -> list[Snapshot]:
        """The history with `drop`'s rows gone, but for the last snapshot (it holds the fills not yet claimed)."""
        return [replace(s, targets=tuple(t for t in s.targets if not drop(t))) for s in history[:-1]] + [history[-1]]

    blind = without(r.history, lambda t: t.submitter == played.address)  # claimed fills: seen open at most
    def seen(history: Sequence[Snapshot]) -> set[str]:
        return {t.target_id for s in history for t in s.targets}

    seen_open = sorted((seen(blind) - seen(blind[-1:])) & set(played.fills))  # claimed, seen open only
    assert len(seen_open) >= 2, seen_open
    never = without(blind, lambda t: t.target_id == seen_open[0])  # and one more never seen at all
    unseen = set(played.fills) - seen(never)
    assert seen_open[0] in unseen
    got = build_review(never, address=played.address, actions=actions, ledger=r.ledger, settings=r.settings)
    filled = {o.target_id: o for o in got.wins if o.how == "we filled it"}
    assert set(filled) == set(played.fills)
    rewards = {o.target_id: o.reward_pool for o in r.wins}
    assert {t: o.reward_pool for t, o in filled.items()} == {t: None if t in unseen else rewards[t] for t in filled}
    # a shorter window (the last two snapshots) leaves our older fills out, as it leaves the board's
    window = never[-2:]
    short = build_review(window, address=played.address, actions=actions, ledger=r.ledger, settings=r.settings)
    epochs = {a.payload.target_id: a.payload.fill_epoch for a in actions if isinstance(a.payload, SubmitPayload)}
    older = {t for t in unseen if (epochs[t] or 0) < window[0].epoch}
    assert older and not older & {o.target_id for o in short.wins}
    assert all(o.epoch >= window[0].epoch for o in short.wins if o.reward_pool is None)
    models = {a.payload.target_id: a.payload.model_id for a in actions if isinstance(a.payload, SubmitPayload)}
    assert {t: (o.submitter, o.winner) for t, o in filled.items()} == {t: (played.address, models[t]) for t in filled}
    # as if rivals had claimed our fills: the shares paid us are the same seen open or seen filled
    unclaimed = [a for a in actions if not isinstance(a.payload, ClaimPayload)]
    ours = set(r.ours)
    full = paid_by_others(r.history, ours, played.address, unclaimed)
    assert full > paid_by_others(r.history, ours, played.address, actions)
    assert paid_by_others(blind, ours, played.address, unclaimed) == full
