"""What `soma-ray board` prints and `soma-ray board simulate` answers, from the board snapshots
beside the driver's ledger (`board/`, one taken now first)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.table import Table

from soma_ray.board.landscape import landscape
from soma_ray.board.opportunity import opportunity
from soma_ray.board.simulate import Candidate, Simulator
from soma_ray.board.snapshot import Snapshot, SnapshotStore
from soma_ray.board.winners import winner_stats, wins
from soma_ray.errors import SomaRayError
from soma_ray.protocol.constants import SHANNONS_PER_SOMA, to_soma

SHOWN_MODELS = 15


class BoardInputError(SomaRayError):
    """A bad --model, --embedding, --stake or --rival."""


def _short(identifier: str | None) -> str:
    return "-" if not identifier else f"{identifier[:10]}…"


def history(board: Path, epochs: int = 20) -> list[Snapshot]:
    store = SnapshotStore(board)
    return store.read_all(store.epochs()[-epochs:])


def summary_tables(snapshot: Snapshot, past: Sequence[Snapshot], address: str | None = None) -> list[Table]:
    """The network, the models (largest stakes first) with their neighbourhoods and wins, and who wins."""
    info = snapshot.info
    scape = landscape(snapshot)
    found = wins(past)
    stats = winner_stats(found, snapshot.params)
    network = Table(title=f"board at epoch {snapshot.epoch}", show_header=False)
    for key, value in (
        ("models / open targets", f"{len(snapshot.models)} / {len(snapshot.open_targets())}"),
        ("distance threshold", f"{info.distance_threshold:.4f}"),
        ("reward per target", f"{to_soma(info.reward_per_target):.6f} SOMA"),
        ("hits this epoch / EMA", f"{info.hits_this_epoch} / {info.hits_ema}"),
        ("clusters (radius 0.3)", ", ".join(str(len(c)) for c in scape.clusters) + " models"),
        ("fills seen / top submitter share", f"{stats.fills} / {stats.top_submitter_share:.0%}"),
        ("epochs of history", f"{len(past)} ({min(s.epoch for s in past)}–{max(s.epoch for s in past)})"),
    ):
        network.add_row(key, value)
    near = {n.model_id: n for n in scape.neighbourhoods}
    models = Table(title=f"models (largest {SHOWN_MODELS} stakes)")
    for column in ("model", "owner", "stake SOMA", "commission bps", "nearest", "distance", "neighbours", "wins"):
        models.add_column(column, justify="left" if column in ("model", "owner", "nearest") else "right")
    for m in sorted(snapshot.models, key=lambda m: (-m.stake, m.model_id))[:SHOWN_MODELS]:
        n = near[m.model_id]
        mark = " (ours)" if address is not None and m.owner == address else ""
        models.add_row(_short(m.model_id) + mark, _short(m.owner), f"{to_soma(m.stake):g}", str(m.commission_rate),
                       _short(n.nearest), f"{n.distance:.3f}", str(n.density), str(stats.wins_per_model.get(m.model_id, 0)))
    owners = Table(title="wins per owner (fills seen by the snapshots)")
    for column in ("owner", "models", "stake SOMA", "wins", "paid as model owner SOMA"):
        owners.add_column(column, justify="left" if column == "owner" else "right")
    by_owner: dict[str, list[int]] = {}
    for m in snapshot.models:
        row = by_owner.setdefault(m.owner, [0, 0])
        row[0] += 1
        row[1] += m.stake
    for owner in sorted(by_owner, key=lambda o: -stats.wins_per_owner.get(o, 0)):
        count, stake = by_owner[owner]
        owners.add_row(_short(owner), str(count), f"{to_soma(stake):g}", str(stats.wins_per_owner.get(owner, 0)),
                       f"{to_soma(stats.payouts.to_model_owners.get(owner, 0)):.6f}")
    return [network, models, owners]


def load_embedding(path: Path, dim: int) -> np.ndarray:
    """A `.npy` array or a JSON list of floats, of the network's embedding size."""
    try:
        vector = np.load(path) if path.suffix == ".npy" else np.asarray(json.loads(path.read_text()), np.float64)
    except (OSError, ValueError) as err:
        raise BoardInputError(f"embedding {path}: cannot read it ({err}); give a .npy file or a JSON list") from err
    vector = np.asarray(vector, dtype=np.float32).ravel()
    if vector.size != dim or not np.isfinite(vector).all():
        raise BoardInputError(f"embedding {path}: {vector.size} values, need {dim} finite ones (the network's size)")
    return vector


def shannons(soma: float, what: str) -> int:
    if not soma > 0:
        raise BoardInputError(f"{what} {soma}: a stake must be a positive number of SOMA")
    return round(soma * SHANNONS_PER_SOMA)


def parse_rival(text: str, dim: int, index: int) -> Candidate:
    """`EMB:STAKE`: an embedding file and a stake in SOMA."""
    path, sep, stake = text.rpartition(":")
    try:
        amount = float(stake)
    except ValueError:
        amount = float("nan")
    if not sep or not path or amount != amount:
        raise BoardInputError(f"--rival {text!r}: write EMBEDDING_FILE:STAKE_SOMA, e.g. rival.npy:5")
    return Candidate(load_embedding(Path(path), dim), shannons(amount, "--rival stake"), f"rival-{index}")


@dataclass(frozen=True)
class SimulateArgs:
    model: str | None
    embedding: Path | None
    stake: float | None
    rivals: Sequence[str]
    draws: int


def candidate_of(snapshot: Snapshot, args: SimulateArgs) -> Candidate:
    dim = snapshot.params.target_embedding_dim
    if (args.model is None) == (args.embedding is None):
        raise BoardInputError("give one of --model ID (an active model) or --embedding FILE (with --stake)")
    if args.model is not None:
        model = next((m for m in snapshot.models if m.model_id.lower() == args.model.lower()), None)
        if model is None:
            raise BoardInputError(f"--model {args.model}: not active at epoch {snapshot.epoch}; see `soma-ray board`")
        stake = model.stake if args.stake is None else shannons(args.stake, "--stake")
        return Candidate(model.vector, stake, model.model_id)
    if args.stake is None:
        raise BoardInputError("--embedding needs --stake (SOMA)")
    assert args.embedding is not None
    return Candidate(load_embedding(args.embedding, dim), shannons(args.stake, "--stake"))


def simulate_lines(snapshot: Snapshot, past: Sequence[Snapshot], args: SimulateArgs) -> list[str]:
    candidate = candidate_of(snapshot, args)
    rivals = [parse_rival(r, snapshot.params.target_embedding_dim, i) for i, r in enumerate(args.rivals, 1)]
    simulator = Simulator(snapshot, draws=args.draws)
    found = opportunity(simulator, candidate, past)
    a = found.assignments
    lines = [
        f"candidate {candidate.model_id} with {to_soma(candidate.stake):g} SOMA at epoch {snapshot.epoch} "
        f"({a.draws} simulated targets)",
        f"listed on {a.share:.1%} of targets: {a.expected_per_epoch:.2f} per epoch of {a.targets_per_epoch}",
        f"P(win | assigned) {found.p_win.rate:.1%} ({found.p_win.source}'s record: {found.p_win.wins} of "
        f"{found.p_win.assigned}); expected {to_soma(round(found.expected_reward)):.6f} SOMA per epoch",
        f"guide ratio (nearby reward ÷ (models + stake)): {found.guide_ratio:.6f}",
    ]
    if rivals:
        with_them = simulator.run(candidate, rivals)
        lines.append(f"with {len(rivals)} rival(s) entering: listed on {with_them.share:.1%} "
                     f"({with_them.expected_per_epoch:.2f} per epoch)")
    return lines
