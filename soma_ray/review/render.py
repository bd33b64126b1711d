"""The review written out: four PNGs, `review.md` (which links them) and `review.html` (one
self-contained page: the pictures inline as data URIs, inline CSS, nothing fetched).

Written into a staging folder and renamed into place, so a reader never sees half a review.
"""

from __future__ import annotations

import base64
import html
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from soma_ray.board.ours import EpochResult
from soma_ray.board.plots import map_png, pnl_png, share_png, win_rate_png
from soma_ray.protocol.constants import to_soma
from soma_ray.review.build import Outcome, Review
from soma_ray.review.pnl import EpochPnl

PICTURES = (
    ("map.png", "The board: models (size: stake, colour: owner, ours ringed) and open targets"),
    ("share.png", "Our main model's share of targets against its stake (simulated)"),
    ("pnl.png", "P&L per epoch from the ledger: rewards less fees and compute"),
    ("win_rate.png", "Targets listing our models, those we won, and the win rate"),
)
CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
.alert { background: #fff0f0; border-left: 4px solid #c00; padding: 0.4em 0.8em; margin: 0.3em 0; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
"""


def soma(shannons: int | float) -> str:
    return f"{to_soma(int(shannons)):.6f}"


def _short(identifier: str | None) -> str:
    return "-" if not identifier else f"{identifier[:10]}…"


Table = tuple[list[str], list[list[str]]]


def tables(review: Review) -> list[tuple[str, Table]]:
    """The review's tables, each a title, a header and rows of text (shared by both formats)."""
    pnl_header = ["epoch", "submissions", "claims", "rewards as submitter", "rewards as model owner",
                  "claimer incentives", "bonds locked", "bonds returned", "fees", "GPU hours", "compute cost", "P&L"]

    def pnl_row(label: str, r: EpochPnl) -> list[str]:
        return [label, str(r.submissions), str(r.claims), soma(r.rewards_as_submitter), soma(r.rewards_as_model_owner),
                soma(r.claimer_incentives), soma(r.bonds_locked), soma(r.bonds_returned), soma(r.fees),
                f"{r.gpu_hours:.3f}", soma(r.compute_cost), soma(r.pnl)]

    def outcome_rows(found: Sequence[Outcome]) -> list[list[str]]:
        return [[o.target_id[:18] + "…", str(o.epoch), "?" if o.reward_pool is None else soma(o.reward_pool),
                 _short(o.winner), _short(o.submitter), o.how] for o in found[:20]]

    outcome_header = ["target", "epoch", "reward (SOMA)", "winning model", "submitter", "outcome"]
    found: list[tuple[str, Table]] = [
        ("Our wins", (outcome_header, outcome_rows(review.wins))),
        ("Misses (targets listing our models that we did not win)", (outcome_header, outcome_rows(review.misses))),
        ("Near misses (closest first)", (["epoch", "target", "model", "distance", "threshold", "gap"], [
            [str(m.epoch), _short(m.target_id), _short(m.model_id), f"{m.distance:.5f}", f"{m.threshold:.5f}",
             f"{m.gap:.5f}"] for m in review.near_misses])),
        ("P&L per epoch (SOMA, from the driver's ledger)", (pnl_header, [
            *(pnl_row(str(r.epoch), r) for r in review.pnl), pnl_row("total", review.pnl_total)])),
        ("Assignment share and win rate per epoch", (["epoch", "targets", "listing ours", "share", "won", "win rate"], [
            [str(s.epoch), str(s.targets), str(s.assigned), f"{s.share:.0%}", str(s.wins), f"{s.win_rate:.0%}"]
            for s in review.shares])),
        (f"Rivals near our models (within {review.settings.rival_distance:g})", (
            ["model", "owner", "stake (SOMA)", "commission (bps)", "near our", "distance", "stake ÷ ours"], [
                [_short(r.model_id), _short(r.owner), f"{to_soma(r.stake):g}", str(r.commission_rate),
                 _short(r.near), f"{r.distance:.4f}", f"{r.stake_ratio:.2f}"] for r in review.rivals])),
    ]
    return found


def summary_lines(review: Review) -> list[str]:
    t, ledger = review.pnl_total, review.ledger
    lines = [
        f"Wallet {review.address}; our models: {', '.join(review.ours) or 'none'}.",
        f"{len(review.wins)} win(s), {len(review.misses)} miss(es), {review.near_miss_count} near miss(es), "
        f"{len(review.failed_submissions)} submission(s) that did not land.",
        f"Rewards {soma(t.rewards)} SOMA (submitter {soma(t.rewards_as_submitter)}, model owner "
        f"{soma(t.rewards_as_model_owner)}, claimer {soma(t.claimer_incentives)}), fees {soma(t.fees)} SOMA, "
        f"compute {soma(t.compute_cost)} SOMA ({t.gpu_hours:.3f} GPU hours"
        f"{'' if review.settings.gpu_hour_cost is not None else '; review.gpu_hour_cost not set'}): "
        f"P&L {soma(t.pnl)} SOMA.",
        f"Ledger: {ledger.submissions} submissions, {ledger.claims} claims, bonds {soma(ledger.bonds_locked)} locked / "
        f"{soma(ledger.bonds_returned)} returned, stake {soma(ledger.model_stake)} SOMA; expected balance "
        f"{soma(ledger.expected_balance)} SOMA, plus {soma(review.paid_by_others)} SOMA our shares of wins "
        f"others claimed = {soma(ledger.expected_balance + review.paid_by_others)} SOMA"
        + (f"; chain balance {soma(review.balance)} SOMA." if review.balance is not None else "."),
    ]
    if review.share_now is not None:
        s = review.share_now
        lines.append(f"Simulated now: our main model is listed on {s.share:.0%} of targets, "
                     f"{s.expected_per_epoch:.1f} per epoch of {s.targets_per_epoch} ({s.draws} draws).")
    return lines


def markdown(review: Review) -> str:
    out = [f"# Epoch review: epoch {review.epoch}", ""]
    out += [f"- {line}" for line in summary_lines(review)] + [""]
    out += ["## Alerts", ""] + ([f"- **{a.kind}**: {a.message}" for a in review.alerts] or ["- none"]) + [""]
    out += ["## Recommended actions", ""] + [f"{i}. {a}" for i, a in enumerate(review.actions, 1)] + [""]
    for title, (header, rows) in tables(review):
        out += [f"## {title}", ""]
        if not rows:
            out += ["(none)", ""]
            continue
        out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows] + [""]
    out += ["## Pictures", ""] + [f"![{caption}]({name})" for name, caption in PICTURES] + [""]
    return "\n".join(out)


def page(review: Review, folder: Path) -> str:
    """The HTML page, its pictures read from `folder` and inlined."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Epoch review {review.epoch}"
             f"</title><style>{CSS}</style></head><body><h1>Epoch review: epoch {review.epoch}</h1><ul>"]
    parts += [f"<li>{e(line)}</li>" for line in summary_lines(review)] + ["</ul><h2>Alerts</h2>"]
    parts += [f"<div class='alert'><b>{e(a.kind)}</b>: {e(a.message)}</div>" for a in review.alerts] or ["<p>none</p>"]
    parts += ["<h2>Recommended actions</h2><ol>"] + [f"<li>{e(a)}</li>" for a in review.actions] + ["</ol>"]
    for name, caption in PICTURES:
        data = base64.b64encode((folder / name).read_bytes()).decode()
        parts.append(f"<figure><img alt='{e(caption)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{e(caption)}</figcaption></figure>")
    for title, (header, rows) in tables(review):
        parts.append(f"<h2>{e(title)}</h2>")
        if not rows:
            parts.append("<p>(none)</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def pictures(review: Review, folder: Path) -> None:
    snapshot = review.snapshot
    map_png(snapshot, folder / "map.png", ours=set(review.ours))
    share_png(review.share_curve, folder / "share.png",
              current_stake=review.share_now.stake if review.share_now is not None else None)
    pnl_png([EpochResult(r.epoch, 0, 0, r.rewards, r.fees + r.compute_cost) for r in review.pnl], folder / "pnl.png")
    win_rate_png([EpochResult(s.epoch, s.assigned, s.wins, 0, 0) for s in review.shares], folder / "win_rate.png")


def write_review(review: Review, out: Path) -> Path:
    """`out`/{review.md, review.html, *.png}, replacing what was there whole."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        pictures(review, staging)
        (staging / "review.md").write_text(markdown(review))
        (staging / "review.html").write_text(page(review, staging))
        old = out.parent / f".{out.name}.{os.getpid()}.old"
        for attempt in range(5):  # the driver actor and a command may write the same folder at once
            if out.exists():
                shutil.rmtree(old, ignore_errors=True)
                try:
                    out.rename(old)
                except FileNotFoundError:
                    pass  # the other writer moved it first
            try:
                staging.rename(out)
                break
            except OSError:
                if attempt == 4:
                    raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
