"""Pictures of the board as PNG files (matplotlib's object API on the Agg canvas: no pyplot, no
display, nothing global): the map of models and open targets, our assignment share against stake,
P&L per epoch, and win rate over epochs."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from soma_ray.board.ours import EpochResult
from soma_ray.board.simulate import Assignments
from soma_ray.board.snapshot import Snapshot
from soma_ray.protocol.constants import to_soma

SIZE = (8.0, 5.0)  # inches
DPI = 110
LABEL_RISES = (10, -18, 24, -32)  # points above (below) a model of ours where its label goes


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=DPI, bbox_inches="tight")
    return path


def _short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}" if len(address) > 12 else address


def project_2d(vectors: np.ndarray) -> np.ndarray:
    """The two principal directions of the unit-length vectors (cosine geometry), N×2."""
    if len(vectors) == 0:
        return np.zeros((0, 2))
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-8)
    centred = unit - unit.mean(axis=0)
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    points = centred @ vt[:2].T
    return np.pad(points, ((0, 0), (0, 2 - points.shape[1])))


def map_png(snapshot: Snapshot, path: Path, *, ours: Collection[str] = ()) -> Path:
    """Models (size by stake, colour by owner, ours ringed and named: model ids or owner
    addresses) and open targets (colour by reward) on their first two principal components."""
    models, targets = list(snapshot.models), snapshot.open_targets()
    vectors = [m.vector for m in models] + [t.vector for t in targets]
    points = project_2d(np.stack(vectors)) if vectors else np.zeros((0, 2))
    at_models, at_targets = points[: len(models)], points[len(models):]
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    if targets:
        rewards = [to_soma(t.reward_pool) for t in targets]
        drawn = ax.scatter(at_targets[:, 0], at_targets[:, 1], c=rewards, cmap="viridis", marker="^", s=28,
                           alpha=0.8, label="open targets")
        fig.colorbar(drawn, ax=ax, label="target reward (SOMA)")
    owners = sorted({m.owner for m in models})
    palette = colormaps["tab10"]
    top = max((m.stake for m in models), default=1) or 1
    for index, owner in enumerate(owners):
        rows = [i for i, m in enumerate(models) if m.owner == owner]
        sizes = [40 + 460 * np.sqrt(models[i].stake / top) for i in rows]
        ax.scatter(at_models[rows, 0], at_models[rows, 1], s=sizes, color=palette(index % palette.N), alpha=0.75,
                   edgecolors="white", linewidths=0.8, label=f"owner {_short(owner)}")
    labelled = 0
    for i, m in enumerate(models):
        if m.model_id in ours or m.owner in ours:
            rise = LABEL_RISES[labelled % len(LABEL_RISES)]  # neighbours of ours get labels at other heights
            labelled += 1
            ax.scatter([at_models[i, 0]], [at_models[i, 1]], s=40 + 460 * np.sqrt(m.stake / top) + 120,
                       facecolors="none", edgecolors="red", linewidths=2.2)
            left = at_models[i, 0] > np.median(points[:, 0])  # label towards the middle, inside the axes
            ax.annotate(f"ours {_short(m.model_id)}", at_models[i], xytext=(-12 if left else 12, rise),
                        textcoords="offset points", ha="right" if left else "left", color="red", fontsize=8,
                        weight="bold")
    ax.set_title(f"Board at epoch {snapshot.epoch}: {len(models)} models, {len(targets)} open targets")
    ax.set_xlabel("principal direction 1")
    ax.set_ylabel("principal direction 2")
    if models or targets:
        ax.legend(loc="best", fontsize=7, markerscale=0.5)
    return _save(fig, path)


def share_png(curve: Sequence[Assignments], path: Path, *, current_stake: int | None = None) -> Path:
    """Our share of targets (and expected assignments per epoch) against stake."""
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    stakes = [to_soma(a.stake) for a in curve]
    ax.plot(stakes, [100 * a.share for a in curve], marker="o", color="tab:blue")
    ax.set_xlabel("stake (SOMA)")
    ax.set_ylabel("share of targets listing the model (%)", color="tab:blue")
    if curve and curve[0].targets_per_epoch:
        per_epoch = curve[0].targets_per_epoch  # the same curve in other units on the right
        def to_count(percent: ArrayLike) -> ArrayLike:
            return np.asarray(percent, dtype=np.float64) * per_epoch / 100

        def to_percent(count: ArrayLike) -> ArrayLike:
            return np.asarray(count, dtype=np.float64) * 100 / per_epoch

        right = ax.secondary_yaxis("right", functions=(to_count, to_percent))
        right.set_ylabel(f"expected assignments per epoch (of {per_epoch})")
        ax.set_title(f"Assignment share against stake ({curve[0].draws} simulated targets per point)")
    if current_stake is not None:
        ax.axvline(to_soma(current_stake), color="grey", linestyle="--", label="current stake")
        ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def pnl_png(results: Sequence[EpochResult], path: Path) -> Path:
    """P&L per epoch in SOMA: green bars for gains, red for losses."""
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    values = [to_soma(r.pnl) for r in results]
    bars = ax.bar([r.epoch for r in results], values, color=["tab:green" if v >= 0 else "tab:red" for v in values])
    ax.bar_label(bars, labels=[f"{v:+.4f}" for v in values], fontsize=7, padding=2)  # small ones stay readable
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("P&L (SOMA)")
    ax.set_title(f"P&L per epoch (total {sum(values):+.4f} SOMA)")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def win_rate_png(results: Sequence[EpochResult], path: Path) -> Path:
    """Our win rate per epoch (wins ÷ targets listing our models), with the counts."""
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    epochs = [r.epoch for r in results]
    ax.bar(epochs, [r.assigned for r in results], color="lightgrey", label="targets listing our models")
    ax.bar(epochs, [r.wins for r in results], color="tab:orange", label="won")
    ax.set_xlabel("epoch")
    ax.set_ylabel("targets")
    right = ax.twinx()
    right.plot(epochs, [100 * r.win_rate for r in results], marker="o", color="tab:blue", label="win rate")
    right.set_ylim(0, 105)
    right.set_ylabel("win rate (%)", color="tab:blue")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Win rate over epochs")
    return _save(fig, path)
