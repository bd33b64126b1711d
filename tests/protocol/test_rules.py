"""Pure protocol rules (soma_ray.protocol) against the chain's numbers.

Every expected value here is taken from the chain's source as recorded in protocol.md §2.3,
§3.2–§3.5, §4.3, §6 and §10 — not recomputed with the code under test.
"""

from __future__ import annotations

import hashlib
import os
import struct

import base58
import numpy as np
import pytest
from soma_sdk import SomaClient

from soma_ray.protocol.assignment import select_models_weighted_knn
from soma_ray.protocol.commitments import (
    bcs_tensor,
    blake2b256,
    commitment,
    decode_key,
    decryption_key_commitment,
    derive_id,
    embedding_commitment,
    target_seed,
)
from soma_ray.protocol.constants import (
    GENESIS_EMISSION_PER_EPOCH,
    SHANNONS_PER_SOMA,
    ProtocolParams,
    bps_mul,
    to_shannons,
)
from soma_ray.protocol.difficulty import (
    adjust_threshold,
    epoch_target_budget,
    genesis_reward_per_target,
    reward_per_target,
    threshold_z,
    update_hits_ema,
)
from soma_ray.protocol.fees import adjust_value_fee
from soma_ray.protocol.rewards import split_expired, split_filled

P = ProtocolParams()


# -- §10 constants --------------------------------------------------------------------------------


def test_v5_parameter_values() -> None:
    assert (P.base_fee, P.write_object_fee) == (1000, 300)
    assert (P.value_fee_bps, P.min_value_fee_bps, P.max_value_fee_bps) == (10, 1, 50)
    assert P.fee_adjustment_rate_bps == 1250
    assert P.target_epoch_fee_collection == SHANNONS_PER_SOMA
    assert P.model_min_stake == SHANNONS_PER_SOMA
    assert P.model_architecture_version == 1
    assert P.model_reveal_slash_rate_bps == 5000
    assert P.target_models_per_target == 3
    assert P.target_embedding_dim == 2048
    assert np.float32(P.target_initial_distance_threshold) == np.float32(1.05)
    assert (P.target_min_distance_threshold, P.target_max_distance_threshold) == (0.95, 2.0)
    assert P.target_hits_per_epoch == 86_400
    assert P.target_hits_ema_decay_bps == 9000
    assert P.target_difficulty_adjustment_rate_bps == 10_000
    assert P.target_initial_targets_per_epoch == 100
    assert (
        P.target_submitter_reward_share_bps,
        P.target_model_reward_share_bps,
        P.target_claimer_incentive_bps,
    ) == (4975, 4975, 50)
    assert P.submission_bond_per_byte == 65
    assert P.max_submission_data_size == 1_048_576
    assert GENESIS_EMISSION_PER_EPOCH == 1_370 * SHANNONS_PER_SOMA


def test_bps_mul_floors_and_to_shannons_truncates() -> None:
    assert bps_mul(12_685_185, 4975) == 6_310_879
    assert bps_mul(199, 50) == 0
    assert bps_mul(10**30, 10_000) == 10**30  # no float rounding (u128 on chain)
    assert to_shannons(0.0127) == 12_700_000
    assert to_shannons(1.9999999999) == 1_999_999_999


# -- §2.3 commitments and BCS ---------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"abc", bytes(range(256)), os.urandom(4097)])
def test_commitment_equals_sdk(data: bytes) -> None:
    assert commitment(data) == SomaClient.commitment(data)
    assert commitment(data) == base58.b58encode(hashlib.blake2b(data, digest_size=32).digest()).decode()


def test_decryption_key_commitment_hashes_the_raw_key_bytes() -> None:
    _, key = SomaClient.encrypt_weights(os.urandom(1000))
    assert len(decode_key(key)) == 32
    assert decryption_key_commitment(key) == SomaClient.commitment(base58.b58decode(key))
    # not a hash of the base58 text
    assert decryption_key_commitment(key) != SomaClient.commitment(key.encode())
    with pytest.raises(ValueError):
        decode_key(base58.b58encode(b"short").decode())


def test_bcs_tensor_2048_layout() -> None:
    values = np.random.default_rng(0).standard_normal(2048).astype(np.float32)
    raw = bcs_tensor(values)
    assert raw[:3] == bytes([0x00, 0x80, 0x40])  # dtype 0, ULEB128(8192)
    assert raw[-9:] == bytes([0x01, 0x00, 0x08, 0, 0, 0, 0, 0, 0])  # ndim 1, u64 LE 2048
    assert len(raw) == 3 + 8192 + 9
    assert raw[3:-9] == struct.pack("<2048f", *values.tolist())


def test_bcs_tensor_small_dims_and_explicit_shape() -> None:
    raw16 = bcs_tensor(np.ones(16, dtype=np.float32))
    assert raw16[:2] == b"\x00\x40"  # 64 bytes: single-byte ULEB128
    assert raw16[-9:] == b"\x01" + struct.pack("<Q", 16)
    raw_scalar = bcs_tensor([0.5], shape=[1])
    assert raw_scalar == b"\x00\x04" + struct.pack("<f", 0.5) + b"\x01" + struct.pack("<Q", 1)
    raw_2d = bcs_tensor(np.zeros(6, dtype=np.float32), shape=[2, 3])
    assert raw_2d[-17:] == b"\x02" + struct.pack("<QQ", 2, 3)


def test_embedding_commitment_is_commitment_of_handbuilt_bcs() -> None:
    values = np.random.default_rng(1).standard_normal(2048).astype(np.float32)
    handbuilt = b"\x00\x80\x40" + struct.pack("<2048f", *values.tolist()) + b"\x01" + struct.pack("<Q", 2048)
    assert embedding_commitment(values) == SomaClient.commitment(handbuilt)
    # the f32 rounding is what is committed: float64 input gives the same commitment
    assert embedding_commitment(values.astype(np.float64)) == embedding_commitment(values)
    assert embedding_commitment(values.tolist()) == embedding_commitment(values)


def test_derive_id_and_target_seed() -> None:
    digest = blake2b256(b"some transaction")
    for n in (0, 1, 2, 99):
        expected = hashlib.blake2b(digest + n.to_bytes(8, "little"), digest_size=32).digest()
        assert derive_id(digest, n) == "0x" + expected.hex()
        assert target_seed(digest, n) == int.from_bytes(expected[:8], "little")
        # epoch-start rule: seed and id share the creation number (§3.2)
        assert target_seed(digest, n) == int.from_bytes(bytes.fromhex(derive_id(digest, n)[2:])[:8], "little")
    assert target_seed(digest, 1) != target_seed(digest, 2)


# -- §3.5 difficulty --------------------------------------------------------------------------------


def test_threshold_z() -> None:
    # (1 - thr) / 0.022: the v5 initial threshold 1.05 and the floor 0.95 sit 2.27 std either side of 1
    assert threshold_z(1.0) == 0.0
    assert threshold_z(1.05) == pytest.approx(-2.272727, abs=1e-6)
    assert threshold_z(0.95) == pytest.approx(2.272727, abs=1e-6)
    assert threshold_z(2.0) == pytest.approx(-45.454545, abs=1e-6)


def _sequence(start: float, ema: int, steps: int) -> list[float]:
    out, thr = [], start
    for _ in range(steps):
        thr = adjust_threshold(thr, ema, P)
        out.append(thr)
    return out


def test_difficulty_too_few_hits_eases_to_the_cap() -> None:
    seq = _sequence(1.05, 1, 7)
    assert seq == pytest.approx([1.10, 1.20, 1.40, 1.80, 2.00, 2.00, 2.00], abs=2e-6)
    assert seq[4] == 2.0  # clamped exactly at target_max_distance_threshold


def test_difficulty_too_many_hits_hardens_to_the_floor() -> None:
    seq = _sequence(1.05, P.target_hits_per_epoch + 1, 5)
    assert seq == pytest.approx([1.00, 0.956, 0.95, 0.95, 0.95], abs=2e-6)
    assert np.float32(seq[-1]) == np.float32(0.95)


def test_difficulty_is_f32_and_holds_at_exactly_target_hits() -> None:
    for thr in _sequence(1.05, 1, 5) + _sequence(1.05, 10**6, 3):
        assert float(np.float32(thr)) == thr
    assert adjust_threshold(1.05, P.target_hits_per_epoch, P) == pytest.approx(1.05, abs=1e-6)


def test_difficulty_bootstrap_and_ema() -> None:
    # EMA of 0 bootstraps with the raw count, and an EMA of 0 skips the adjustment
    assert update_hits_ema(0, 500, 9000) == 500
    assert update_hits_ema(0, 0, 9000) == 0
    assert adjust_threshold(1.05, 0, P) == pytest.approx(1.05, abs=1e-7)
    assert adjust_threshold(1.37, 0, P) == pytest.approx(1.37, abs=1e-7)
    # integer floor of (decay*ema + (1-decay)*hits)
    assert update_hits_ema(500, 1000, 9000) == 550
    assert update_hits_ema(3, 0, 9000) == 2
    assert update_hits_ema(1, 0, 9000) == 0  # decays back to the bootstrap state
    assert update_hits_ema(7, 5, 7000) == (7000 * 7 + 3000 * 5) // 10_000


# -- §3.3 reward per target ----------------------------------------------------------------------


def test_reward_per_target_and_genesis_reward() -> None:
    emission = 1_370 * SHANNONS_PER_SOMA
    assert epoch_target_budget(emission, P) == 1_096 * SHANNONS_PER_SOMA
    assert reward_per_target(emission, P) == 12_685_185
    assert genesis_reward_per_target(emission, P) == 5_480_000_000  # 5.48 SOMA = 1096 / 200
    # the chain divides by max(target_hits_per_epoch, 1)
    zero_hits = ProtocolParams(target_hits_per_epoch=0)
    assert reward_per_target(emission, zero_hits) == 1_096 * SHANNONS_PER_SOMA


# -- §6 reward split ---------------------------------------------------------------------------------


def test_split_of_a_default_target() -> None:
    split = split_filled(12_685_185, P)
    assert (split.model_owner, split.claimer, split.submitter) == (6_310_879, 63_425, 6_310_881)
    assert split.to_emission_pool == 0


def test_split_expired() -> None:
    split = split_expired(12_685_185, P)
    assert split.claimer == 63_425
    assert split.to_emission_pool == 12_685_185 - 63_425
    assert split.submitter == split.model_owner == 0


@pytest.mark.parametrize("reward", [0, 1, 199, 200, 201, 10_000, 5_480_000_000, 987_654_321_123])
def test_split_floors_with_remainder_to_submitter(reward: int) -> None:
    split = split_filled(reward, P)
    assert split.model_owner == reward * 4975 // 10_000
    assert split.claimer == reward * 50 // 10_000
    assert split.submitter + split.model_owner + split.claimer == reward
    assert split.submitter >= split.model_owner


# -- §3.2 weighted KNN ---------------------------------------------------------------------------------

T = np.array([1.0, 0.0], dtype=np.float32)
NEAR = np.array([0.8, 0.6], dtype=np.float32)  # cosine distance 0.2
FAR = np.array([0.6, 0.8], dtype=np.float32)  # cosine distance 0.4
OPPOSITE = np.array([-1.0, 0.0], dtype=np.float32)  # cosine distance 2


def test_knn_closer_wins_at_equal_stake() -> None:
    emb = np.stack([OPPOSITE, FAR, NEAR])
    assert select_models_weighted_knn(T, ["c", "b", "a"], emb, [5, 5, 5], 3) == ["a", "b", "c"]
    assert select_models_weighted_knn(T, ["c", "b", "a"], emb, [5, 5, 5], 2) == ["a", "b"]


def test_knn_uses_sqrt_stake_share() -> None:
    emb = np.stack([NEAR, FAR])
    # 3x stake: sqrt share 0.634 vs 0.366 -> 0.4/0.634 > 0.2/0.366, the nearer model still wins
    # (a linear stake share would rank the farther one first)
    assert select_models_weighted_knn(T, ["near", "far"], emb, [100, 300], 2) == ["near", "far"]
    # 9x stake: sqrt share 0.75 vs 0.25 -> 0.533 < 0.8, the higher stake wins
    assert select_models_weighted_knn(T, ["near", "far"], emb, [100, 900], 2) == ["far", "near"]


def test_knn_higher_stake_wins_at_equal_distance() -> None:
    emb = np.stack([FAR, FAR, FAR])
    assert select_models_weighted_knn(T, ["x", "y", "z"], emb, [1, 50, 7], 3) == ["y", "z", "x"]


def test_knn_ties_keep_registry_order() -> None:
    emb = np.stack([FAR, FAR, FAR, FAR])
    ids = ["0x01", "0x02", "0x03", "0x04"]
    assert select_models_weighted_knn(T, ids, emb, [9, 9, 9, 9], 3) == ids[:3]
    assert select_models_weighted_knn(T, ids[::-1], emb, [9, 9, 9, 9], 4) == ids[::-1]


def test_knn_scale_invariant_and_small_registries() -> None:
    emb = np.stack([NEAR * 1000.0, FAR * 0.001])
    assert select_models_weighted_knn(T * 7.0, ["near", "far"], emb, [4, 4], 3) == ["near", "far"]
    assert select_models_weighted_knn(T, [], np.zeros((0, 2)), [], 3) == []
    # a zero embedding is clamped (no NaN): distance 1, so it ranks behind a near model
    emb0 = np.stack([np.zeros(2, dtype=np.float32), NEAR])
    assert select_models_weighted_knn(T, ["zero", "near"], emb0, [1, 1], 2) == ["near", "zero"]


# -- §4.3 value fee adjustment -----------------------------------------------------------------------


def test_value_fee_decays_in_quiet_epochs_and_sticks_at_7() -> None:
    seq, bps = [], 10
    for _ in range(5):
        bps = adjust_value_fee(bps, 0, P)
        seq.append(bps)
    assert seq == [9, 8, 7, 7, 7]


def test_value_fee_rises_when_collection_exceeds_target() -> None:
    assert adjust_value_fee(10, 2 * SHANNONS_PER_SOMA, P) == 11  # capped at 12.5% of 10, floored
    assert adjust_value_fee(40, 100 * SHANNONS_PER_SOMA, P) == 45  # 40 * 1250 // 10000 = 5
    assert adjust_value_fee(48, 100 * SHANNONS_PER_SOMA, P) == 50  # clamped to max
    assert adjust_value_fee(10, SHANNONS_PER_SOMA, P) == 10  # on target
    # proportional below the cap: ratio 10500 -> 16 * 500 // 10000 = 0 ... 40 * 500 // 10000 = 2
    assert adjust_value_fee(40, 1_050_000_000, P) == 42
    assert adjust_value_fee(1, 0, P) == 1  # min clamp (the floored step is 0 anyway)
    assert adjust_value_fee(40, 900_000_000, P) == 36  # 40 * 1000 // 10000 = 4 < cap 5


def test_audit_tolerance_is_burns_permissive() -> None:
    """|x − y| < max(0.01, 0.01·max(|x|, |y|)) (§1.8): absolute near zero, 1% relative above 1."""
    from soma_ray.protocol.audit import within_audit_tolerance

    assert within_audit_tolerance(0.5, 0.5099) and not within_audit_tolerance(0.5, 0.5101)
    assert within_audit_tolerance(10.0, 10.099) and not within_audit_tolerance(10.0, 10.102)
    assert within_audit_tolerance(-3.0, -3.02) and not within_audit_tolerance(3.0, -3.0)
    assert not within_audit_tolerance(float("nan"), float("nan"))
