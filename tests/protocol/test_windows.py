"""Epoch windows (protocol.md §3.4, §4.4, §5, §6), checked against the worked timelines there:
commit in N, reveal only in N+1; fill in F, reports in F+1, claim from F+2."""

from __future__ import annotations

import pytest

from soma_ray.protocol.windows import (
    audit_epoch,
    audit_window_open,
    claimable_from,
    commit_missed,
    latest_claimable_fill_epoch,
    reveal_epoch,
    reveal_missed,
    stake_activation_epoch,
    target_expired,
    target_open,
)


def test_reveal_only_in_the_epoch_after_the_commit() -> None:
    assert reveal_epoch(7) == 8
    assert [reveal_missed(7, e) for e in (7, 8, 9, 20)] == [False, False, True, True]


def test_a_created_model_must_commit_in_its_create_epoch_or_the_next() -> None:
    assert [commit_missed(3, e) for e in (3, 4, 5, 6)] == [False, False, True, True]


def test_stake_counts_from_the_next_epoch() -> None:
    assert stake_activation_epoch(0) == 1
    assert stake_activation_epoch(41) == 42


def test_open_and_expired_targets() -> None:
    assert target_open(5, 5) and not target_expired(5, 5)
    assert not target_open(5, 6) and target_expired(5, 6)


def test_audit_window_and_claims() -> None:
    assert audit_epoch(10) == 11  # validators report in fill_epoch + 1
    assert claimable_from(10) == 12
    assert [audit_window_open(10, e) for e in (10, 11, 12, 13)] == [True, True, False, False]
    assert latest_claimable_fill_epoch(12) == 10


@pytest.mark.parametrize("epoch", range(8))
def test_latest_claimable_fill_epoch_agrees_with_the_window(epoch: int) -> None:
    for fill in range(8):
        assert (fill <= latest_claimable_fill_epoch(epoch)) == (not audit_window_open(fill, epoch))
