"""Fees (protocol.md §4.3, §8) and the submission bond (§4.2): expected values are the chain's
numbers as recorded in protocol.md, written out here rather than recomputed."""

from __future__ import annotations

import pytest

from soma_ray.protocol.bond import data_size_allowed, submission_bond
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.protocol.fees import (
    claim_value_fee,
    failed_transaction_fee,
    stake_value_fee,
    transaction_fee,
    transfer_value_fee,
)

P = ProtocolParams()


def test_transaction_fee_is_base_plus_writes_plus_value() -> None:
    assert transaction_fee(P, 0, 0) == 1_000
    assert transaction_fee(P, 4, 0) == 2_200  # 1000 + 300·4
    # §8: a claim of a 12,685,185-shannon target at 10 bps ≈ 1000 + 300·~4 + 6,342
    assert transaction_fee(P, 4, 6_342) == 8_542
    assert transaction_fee(ProtocolParams(base_fee=7, write_object_fee=2), 3, 5) == 18


def test_a_failed_transaction_pays_the_base_fee_at_most_the_gas_coin() -> None:
    assert failed_transaction_fee(P, 10**9) == 1_000
    assert failed_transaction_fee(P, 999) == 999
    assert failed_transaction_fee(P, 0) == 0


def test_value_fees() -> None:
    # TransferCoin/PayCoins: amount·bps/10000, floored
    assert transfer_value_fee(1_000_000_000, 10) == 1_000_000
    assert transfer_value_fee(999, 10) == 0
    assert transfer_value_fee(123_456_789, 50) == 617_283
    # CreateModel/AddStake: half the rate (bps // 2)
    assert stake_value_fee(1_000_000_000, 10) == 500_000
    assert stake_value_fee(1_000_000_000, 7) == 300_000  # 7 // 2 = 3 bps
    assert stake_value_fee(1_000_000_000, 1) == 0
    # ClaimRewards: half the rate on the reward (§8: 6,342 on a 0.0127-SOMA target)
    assert claim_value_fee(12_685_185, 10) == 6_342
    assert claim_value_fee(12_685_185, 1) == 0


@pytest.mark.parametrize(
    ("size", "bond"),
    [(0, 0), (1, 65), (5_000, 325_000), (1_048_576, 68_157_440)],  # §4.2 examples
)
def test_submission_bond_is_65_per_byte(size: int, bond: int) -> None:
    assert submission_bond(size, P) == bond


def test_bond_follows_the_parameter() -> None:
    assert submission_bond(5_000, ProtocolParams(submission_bond_per_byte=10)) == 50_000  # v1–2


def test_data_size_limit_is_one_mebibyte() -> None:
    assert data_size_allowed(0, P)
    assert data_size_allowed(1_048_576, P)
    assert not data_size_allowed(1_048_577, P)
