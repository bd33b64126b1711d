"""The seeded genesis board of the simulated network (`SimSettings.genesis_board`).

Every draw is a function of (seed, purpose, index) through Blake2b and arrgen, so every machine
plans the same board byte for byte (no dependence on numpy's or Python's generator streams);
the rivals draw their choices the same way.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import arrgen
import numpy as np

from soma_ray.chain.sim.settings import GenesisBoard
from soma_ray.protocol.commitments import blake2b256


def draw(seed: int, purpose: str, index: int) -> int:
    """A 64-bit draw for (seed, purpose, index)."""
    digest = blake2b256(b"soma-ray/sim/board/%s/" % purpose.encode() + struct.pack("<QQ", seed, index))
    return int.from_bytes(digest[:8], "little")


def uniform(seed: int, purpose: str, index: int) -> float:
    """A draw in [0, 1)."""
    return draw(seed, purpose, index) / 2.0**64


def permutation(seed: int, purpose: str, n: int) -> list[int]:
    """0..n-1 in a seeded order."""
    return sorted(range(n), key=lambda i: draw(seed, purpose, i))


def normal(seed: int, purpose: str, index: int, dim: int) -> np.ndarray:
    """An N(0, 1) float32 vector from arrgen (seed folded to 32 bits as arrgen takes it)."""
    return np.asarray(arrgen.normal_array(draw(seed, purpose, index) % 2**32, [dim], 0.0, 1.0), dtype=np.float32)


@dataclass(frozen=True)
class BoardModel:
    owner: int  # index of the owner account (accounts.owner_keypair)
    cluster: int
    embedding: np.ndarray  # float32, as committed
    stake: int
    commission_rate: int  # bps


def plan_board(board: GenesisBoard, count: int, dim: int) -> list[BoardModel]:
    """`count` genesis models. Owners and clusters are dealt round-robin over a seeded order, so
    each gets its share; stakes sit on a log scale from stake_min to stake_max (both ends drawn
    exactly, the rest jittered in between), dealt in a seeded order; each band of commissions is
    used in turn, with a rate drawn inside it."""
    seed = board.seed
    owner_of = permutation(seed, "owner", count)
    cluster_of = permutation(seed, "cluster", count)
    stake_rank = permutation(seed, "stake", count)
    band_of = permutation(seed, "band", count)
    centres = [normal(seed, "centre", k, dim) for k in range(board.clusters)]
    low, high = math.log(board.stake_min), math.log(board.stake_max)
    models = []
    for i in range(count):
        rank = stake_rank[i]
        if count == 1 or rank in (0, count - 1):
            q = 0.0 if rank == 0 else 1.0
        else:
            q = (rank + uniform(seed, "stake-jitter", i) - 0.5) / (count - 1)
        stake = board.stake_min if q == 0.0 else board.stake_max if q == 1.0 else round(math.exp(low + q * (high - low)))
        band_low, band_high = board.commission_bands[band_of[i] % len(board.commission_bands)]
        rate = band_low + int(uniform(seed, "rate", i) * (band_high - band_low + 1))
        cluster = cluster_of[i] % board.clusters
        offset = normal(seed, "member", i, dim) * np.float32(board.cluster_spread)
        models.append(BoardModel(
            owner=owner_of[i] % board.owners,
            cluster=cluster,
            embedding=(centres[cluster] + offset).astype(np.float32),
            stake=min(max(stake, board.stake_min), board.stake_max),
            commission_rate=min(rate, band_high),
        ))
    return models
