"""Training data: held-out split, disjoint rank shards, deterministic resumable order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from soma_ray.config import TrainConfig
from soma_ray.data import DataError
from soma_ray.training.data import MicroBatch, SequenceStream, heldout_samples, is_heldout
from tests.training.kit import tiny_config


def _stream(config: TrainConfig, rank: int = 0, world: int = 1, **kw: int) -> SequenceStream:
    t = config.training
    args = {"rank": rank, "world_size": world, "seed": t.seed, "shuffle_buffer": t.shuffle_buffer, "micro_batch": 2}
    return SequenceStream(config.data, config.heldout, **{**args, **kw})


def test_heldout_is_stable_and_never_trained_on(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    heldout = heldout_samples(config.data, config.heldout)
    assert heldout and heldout == heldout_samples(config.data, config.heldout)
    assert all(is_heldout(s, config.heldout.every) for s in heldout)
    training = list(_stream(config)._training_samples())
    assert training and not set(heldout) & set(training)
    assert not any(is_heldout(s, config.heldout.every) for s in training)


def _take(it: Iterator[MicroBatch], n: int) -> list[MicroBatch]:
    return [next(it) for _ in range(n)]


def test_ranks_get_disjoint_shards_that_cover_a_pass(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, shuffle_buffer=4)
    alone = {blk.tobytes() for blk in _stream(config)._pass(0)}
    rank0 = {blk.tobytes() for blk in _stream(config, 0, 2)._pass(0)}
    rank1 = {blk.tobytes() for blk in _stream(config, 1, 2)._pass(0)}
    assert rank0 and rank1
    assert not rank0 & rank1
    assert rank0 | rank1 == alone


def test_sequences_carry_global_clamped_positions(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    blocks = list(_stream(config)._pass(0))
    long = next(b for b in blocks if b.shape[0] >= 2)  # a sample of 2+ chunks
    positions = long[:, 1]
    assert positions[1, 0] == 1024  # chunk 1 starts at global byte 1024
    last = positions[-1]
    assert (last[last.argmax():] == last.max()).all()  # PAD/EOS positions are clamped


def test_order_is_deterministic_and_skip_resumes_exactly(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    full = _take(_stream(config).batches(), 30)
    again = _take(_stream(config).batches(), 30)
    resumed = _take(_stream(config).batches(skip=17), 13)
    for a, b in zip(full, again, strict=True):
        assert torch.equal(a.tokens, b.tokens)
    for a, b in zip(full[17:], resumed, strict=True):
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.positions, b.positions)
    other_seed = _take(_stream(config, seed=1).batches(), 30)
    assert any(not torch.equal(a.tokens, b.tokens) for a, b in zip(full, other_seed, strict=True))


def test_too_few_samples_for_the_workers_is_one_clear_error(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    config.data.limit = 1
    with pytest.raises(DataError, match="fewer samples than workers"):
        next(_stream(config, rank=1, world=2).batches())
