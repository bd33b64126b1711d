"""Bytes → V1 chunks exactly as the scoring data loader builds them (protocol.md §1.3).

Vectorised with numpy so that thousands of samples are chunked without Python loops over bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soma_ray.protocol.constants import BATCH_SIZE, EOS_TOKEN, MAX_SEQ_LEN, PAD_TOKEN, ProtocolParams

MAX_DATA_BYTES = ProtocolParams.max_submission_data_size  # the on-chain limit (§1.7)


@dataclass(frozen=True)
class Chunks:
    """Every chunk of every accepted sample, in (sample, chunk) order."""

    tokens: np.ndarray  # int64 [rows, 1024]
    targets: np.ndarray  # int64 [rows, 1024]
    positions: np.ndarray  # int64 [rows, 1024]
    sample: np.ndarray  # int64 [rows]: index into the caller's samples
    batch: np.ndarray  # int64 [rows]: the sample's 16-chunk batch index k = chunk // 16


def rejection(data: bytes) -> str | None:
    """Why a sample cannot be scored, or None (empty data yields no batches on the scorer)."""
    if len(data) == 0:
        return "empty data: the scorer produces no batches for 0 bytes"
    if len(data) > MAX_DATA_BYTES:
        return f"{len(data)} bytes exceeds the 1 MiB (1,048,576 byte) submission limit"
    return None


def chunk_samples(samples: list[tuple[int, bytes]]) -> Chunks:
    """Chunk (index, data) pairs; data must already have passed `rejection`."""
    counts = [-(-len(data) // MAX_SEQ_LEN) for _, data in samples]
    rows = sum(counts)
    tokens = np.full((rows, MAX_SEQ_LEN), PAD_TOKEN, dtype=np.int64)
    positions = np.empty((rows, MAX_SEQ_LEN), dtype=np.int64)
    sample = np.empty(rows, dtype=np.int64)
    batch = np.empty(rows, dtype=np.int64)
    offsets = np.arange(MAX_SEQ_LEN, dtype=np.int64)
    row = 0
    for (index, data), n_chunks in zip(samples, counts, strict=True):
        raw = np.frombuffer(data, dtype=np.uint8)
        full = len(data) // MAX_SEQ_LEN
        block = tokens[row : row + n_chunks]
        block.reshape(-1)[: len(data)] = raw  # chunk c holds bytes [1024c, 1024c + 1024)
        starts = np.arange(n_chunks, dtype=np.int64)[:, None] * MAX_SEQ_LEN
        positions[row : row + n_chunks] = starts + offsets
        if full < n_chunks:  # a short final chunk: EOS after the data, positions clamped
            tail = len(data) - full * MAX_SEQ_LEN
            block[-1, tail] = EOS_TOKEN
            positions[row + n_chunks - 1, tail:] = full * MAX_SEQ_LEN + tail
        sample[row : row + n_chunks] = index
        batch[row : row + n_chunks] = np.arange(n_chunks) // BATCH_SIZE
        row += n_chunks
    targets = np.empty_like(tokens)
    targets[:, :-1] = tokens[:, 1:]
    targets[:, -1] = PAD_TOKEN  # cross-chunk next bytes are never scored
    return Chunks(tokens, targets, positions, sample, batch)
