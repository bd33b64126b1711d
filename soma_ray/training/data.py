"""Training data: byte samples → the scorer's 1024-token sequences, sharded across ranks.

- Held out: a sample is held out when the Blake2b of its bytes falls in 1 of `every` buckets,
  so the split is the same on every rank and whatever the shuffling; the held-out set is the
  first `max_samples` such samples (or a separate source). Training never sees any of them.
- Sharding: the stream is read in the same shuffled order on every rank (same seed) and
  sample i goes to rank i % world_size, so no two ranks ever train on the same sequence.
- Sequences are built by the scorer's own chunker (global clamped positions, PAD/EOS rules,
  protocol.md §1.3), so training sees exactly what the network scores.
- Deterministic: micro-batch n of a rank is a pure function of (config, seed, rank, n), which
  is what lets a resumed run skip to where it stopped and reproduce the same losses.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np
import torch

from soma_ray.data import DataConfig, DataError, build_source, digest
from soma_ray.scoring.chunks import chunk_samples
from soma_ray.training.config import HeldoutSection


@dataclass(frozen=True)
class MicroBatch:
    tokens: torch.Tensor  # int64 [b, 1024]
    positions: torch.Tensor  # int64 [b, 1024], global and clamped
    targets: torch.Tensor  # int64 [b, 1024], PAD where nothing is scored

    def to(self, device: torch.device) -> MicroBatch:
        return MicroBatch(self.tokens.to(device), self.positions.to(device), self.targets.to(device))


def is_heldout(sample: bytes, every: int) -> bool:
    return int.from_bytes(digest(sample)[:8], "little") % every == 0


def heldout_samples(data: DataConfig, heldout: HeldoutSection) -> list[bytes]:
    """The held-out set, identical on every rank and every run of the same config."""
    if heldout.data is not None:
        return list(islice(build_source(heldout.data), heldout.max_samples))
    chosen = (s for s in build_source(data) if is_heldout(s, heldout.every))
    return list(islice(chosen, heldout.max_samples))


def _shuffled(samples: Iterable[bytes], buffer_size: int, rng: random.Random) -> Iterator[bytes]:
    """Streaming shuffle: keep `buffer_size` samples, emit a random one as each new one arrives."""
    buffer: list[bytes] = []
    for sample in samples:
        if len(buffer) < buffer_size:
            buffer.append(sample)
            continue
        index = rng.randrange(buffer_size)
        yield buffer[index]
        buffer[index] = sample
    rng.shuffle(buffer)
    yield from buffer


class SequenceStream:
    """An endless, deterministic stream of micro-batches for one rank (passes repeat the data)."""

    def __init__(
        self,
        data: DataConfig,
        heldout: HeldoutSection,
        *,
        rank: int,
        world_size: int,
        seed: int,
        shuffle_buffer: int,
        micro_batch: int,
    ) -> None:
        self.data, self.heldout = data, heldout
        self.rank, self.world_size = rank, world_size
        self.seed, self.shuffle_buffer, self.micro_batch = seed, shuffle_buffer, micro_batch

    def _training_samples(self) -> Iterator[bytes]:
        source = build_source(self.data)
        if self.heldout.data is not None:
            return source
        return (s for s in source if not is_heldout(s, self.heldout.every))

    def _pass(self, number: int) -> Iterator[np.ndarray]:
        """This rank's sequences of one pass over the data, as [rows, 3, 1024] blocks."""
        rng = random.Random(self.seed * 1_000_003 + number)
        for i, sample in enumerate(_shuffled(self._training_samples(), self.shuffle_buffer, rng)):
            if i % self.world_size == self.rank:
                chunks = chunk_samples([(0, sample)])
                yield np.stack([chunks.tokens, chunks.positions, chunks.targets], axis=1)

    def _rows(self) -> Iterator[np.ndarray]:
        number = 0
        while True:
            empty = True
            for block in self._pass(number):
                empty = False
                yield from block
            if empty:
                raise DataError(
                    f"rank {self.rank} of {self.world_size} got no training samples: the source has "
                    "fewer samples than workers (after holding out); add data or use fewer workers"
                )
            number += 1

    def batches(self, skip: int = 0) -> Iterator[MicroBatch]:
        """Micro-batches from number `skip` on (a resumed run skips what it already trained on)."""
        rows = self._rows()
        while True:
            block = np.stack(list(islice(rows, self.micro_batch)))  # endless: always full
            if skip:
                skip -= 1
                continue
            tensor = torch.from_numpy(block)
            yield MicroBatch(tensor[:, 0].contiguous(), tensor[:, 1].contiguous(), tensor[:, 2].contiguous())
