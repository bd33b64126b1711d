"""The assignment simulator: which models the chain would assign to targets, by Monte Carlo over
the chain's own target draws (`protocol.targets.target_embedding`) and its stake-weighted KNN
(`protocol.assignment.select_models_weighted_knn`, §3.2).

With the seeds the chain used (`epoch_start_seed` reads them from epoch-start target ids) and the
models active when the targets were drawn, `assign` reproduces the chain's assignment exactly.
For a candidate (an embedding and a stake, new or replacing one of ours) it estimates the share
of targets that list it and so its expected assignments per epoch; every what-if is run on the
same draws, so comparisons between them carry no sampling noise of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from soma_ray.board.snapshot import ModelRow, Snapshot
from soma_ray.protocol.assignment import select_models_weighted_knn
from soma_ray.protocol.targets import target_embedding

CANDIDATE_ID = "candidate"  # sorts after every 0x… id: a new model loses exact ties, as a late id may


@dataclass(frozen=True, eq=False)
class Candidate:
    """A model to try: a new one, or (with the id of an existing one) that model changed."""

    embedding: np.ndarray
    stake: int
    model_id: str = CANDIDATE_ID


@dataclass(frozen=True)
class Registry:
    """Active models in registry order (by id, as the chain iterates them)."""

    ids: tuple[str, ...]
    embeddings: np.ndarray
    stakes: tuple[int, ...]


def registry(models: Sequence[ModelRow], extra: Sequence[Candidate] = ()) -> Registry:
    """The models plus candidates (a candidate with an existing id replaces that model)."""
    entries = {m.model_id: (m.vector, m.stake) for m in models}
    for candidate in extra:
        entries[candidate.model_id] = (np.asarray(candidate.embedding, dtype=np.float32).ravel(), candidate.stake)
    ids = tuple(sorted(entries))
    if not ids:
        return Registry((), np.zeros((0, 0), dtype=np.float32), ())
    dims = {entries[i][0].size for i in ids}
    if len(dims) != 1:
        raise ValueError(f"embeddings of different sizes {sorted(dims)}: a candidate must match the network's dimension")
    return Registry(ids, np.stack([entries[i][0] for i in ids]), tuple(entries[i][1] for i in ids))


def draw_seeds(count: int, seed: int = 0) -> list[int]:
    """`count` u64 target seeds for a Monte Carlo run, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    return [int(s) for s in rng.integers(0, np.iinfo(np.uint64).max, size=count, dtype=np.uint64, endpoint=True)]


def draw_targets(seeds: Sequence[int], dim: int) -> np.ndarray:
    """Target embeddings as the chain draws them from `seeds` (one row per seed)."""
    if not seeds:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack([target_embedding(s, dim) for s in seeds])


def assign(reg: Registry, targets: np.ndarray, k: int) -> list[list[str]]:
    """The models the chain assigns to each target embedding, best first."""
    return [select_models_weighted_knn(t, list(reg.ids), reg.embeddings, list(reg.stakes), k) for t in targets]


@dataclass(frozen=True)
class Assignments:
    """A candidate's result over `draws` simulated targets."""

    model_id: str
    stake: int
    draws: int
    hits: int  # draws whose assigned models include the candidate
    targets_per_epoch: int

    @property
    def share(self) -> float:
        """Share of targets that list the candidate."""
        return self.hits / self.draws if self.draws else 0.0

    @property
    def expected_per_epoch(self) -> float:
        return self.share * self.targets_per_epoch


def targets_per_epoch(snapshot: Snapshot) -> int:
    """Targets the chain creates per epoch: those the snapshot saw generated in the previous epoch
    (epoch-start and spawned), or the epoch-start count when it saw none (§3.3)."""
    previous = sum(1 for t in snapshot.targets if t.generation_epoch == snapshot.epoch - 1)
    return previous or snapshot.params.target_initial_targets_per_epoch


class Simulator:
    """Monte Carlo over one fixed set of target draws, against one snapshot's models."""

    def __init__(self, snapshot: Snapshot, *, draws: int = 1000, seed: int = 0, per_epoch: int | None = None) -> None:
        if draws <= 0:
            raise ValueError(f"draws must be positive, got {draws}")
        self.snapshot = snapshot
        self.k = snapshot.params.target_models_per_target
        self.per_epoch = targets_per_epoch(snapshot) if per_epoch is None else per_epoch
        self.targets = draw_targets(draw_seeds(draws, seed), snapshot.params.target_embedding_dim)

    def run(self, candidate: Candidate, rivals: Sequence[Candidate] = ()) -> Assignments:
        reg = registry(self.snapshot.models, [*rivals, candidate])
        hits = sum(candidate.model_id in chosen for chosen in assign(reg, self.targets, self.k))
        return Assignments(candidate.model_id, candidate.stake, len(self.targets), hits, self.per_epoch)

    def stake_curve(self, candidate: Candidate, stakes: Sequence[int]) -> list[Assignments]:
        """What if the candidate had each of `stakes`."""
        return [self.run(Candidate(candidate.embedding, s, candidate.model_id)) for s in stakes]

    def with_rival(self, candidate: Candidate, rival: Candidate) -> Assignments:
        """What if a rival (another id) entered at some point with some stake."""
        if rival.model_id == candidate.model_id:
            raise ValueError(f"the rival needs its own id, not the candidate's ({rival.model_id!r})")
        return self.run(candidate, [rival])
