"""TransactionData and every TransactionKind as BCS (soma_ray.protocol.wire.transaction), protocol.md §13.3.

The expected bytes below are assembled by hand with `struct` from the Rust declarations
(types/src/transaction.rs at sdk-v0.1.15) — not with the codec under test. Field orders that the
real client cannot confirm offline (fields of one type) are pinned here.
"""

from __future__ import annotations

import dataclasses
import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soma_ray.protocol.wire.base import Manifest, ObjectRef, SomaTensor
from soma_ray.protocol.wire.bcs import BcsError
from soma_ray.protocol.wire.objects import (
    AddressOwner,
    ImmutableOwner,
    Object,
    ObjectType,
    SharedOwner,
    StakedSoma,
    Target,
    TargetStatusKind,
    coin_balance,
    coin_contents,
)
from soma_ray.protocol.wire.transaction import (
    KINDS,
    AddStakeToModel,
    ClaimRewards,
    CommitModel,
    CreateModel,
    PayCoins,
    RevealModel,
    SubmitData,
    TransactionData,
    TransactionKind,
    TransferCoin,
)
from tests.kit import fuzz
from tests.protocol import kit

SENDER = bytes([0x11]) * 32
COIN = ObjectRef(bytes([0xC0]) * 32, 5, bytes([0xD0]) * 32)
COIN_BCS = bytes([0xC0]) * 32 + struct.pack("<Q", 5) + b"\x20" + bytes([0xD0]) * 32
MODEL = bytes([0xAA]) * 32
TARGET = bytes([0xBB]) * 32
H1, H2, H3 = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32


def q(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}Q", *values)


def tensor_bcs(values: list[float], shape: list[int]) -> bytes:
    raw = struct.pack(f"<{len(values)}f", *values)
    return b"\x00" + bytes((len(raw),)) + raw + bytes((len(shape),)) + q(*shape)


def tx_bcs(variant: int, fields: bytes) -> bytes:
    """TransactionData::V1 (0) ‖ kind variant ‖ fields ‖ sender ‖ gas [COIN]."""
    return b"\x00" + bytes((variant,)) + fields + SENDER + b"\x01" + COIN_BCS


def manifest_bcs(url: str, checksum: bytes, size: int) -> bytes:
    return b"\x00" + bytes((len(url),)) + url.encode() + b"\x00" + b"\x20" + checksum + q(size)


URL = "https://example.com/w.bin"

CASES: list[tuple[str, TransactionKind, bytes]] = [
    (
        "PayCoins",
        PayCoins((COIN,), (1_000, 2), (H1, H2)),
        tx_bcs(10, b"\x01" + COIN_BCS + b"\x01" + b"\x02" + q(1_000, 2) + b"\x02" + H1 + H2),
    ),
    ("PayCoins, amounts None", PayCoins((COIN,), None, (H1,)), tx_bcs(10, b"\x01" + COIN_BCS + b"\x00" + b"\x01" + H1)),
    ("TransferCoin (merge)", TransferCoin(COIN, None, SENDER), tx_bcs(9, COIN_BCS + b"\x00" + SENDER)),
    ("TransferCoin", TransferCoin(COIN, 7, H1), tx_bcs(9, COIN_BCS + b"\x01" + q(7) + H1)),
    ("CreateModel", CreateModel(1_000_000_000, 250, 1), tx_bcs(14, q(1_000_000_000, 250, 1))),
    (
        "CommitModel",
        CommitModel(MODEL, Manifest(URL, H1, 4096), H1, H2, H3),
        tx_bcs(15, MODEL + manifest_bcs(URL, H1, 4096) + b"\x20" + H1 + b"\x20" + H2 + b"\x20" + H3),
    ),
    (
        "RevealModel",
        RevealModel(MODEL, H3, SomaTensor.from_values([1.0, -2.5])),
        tx_bcs(16, MODEL + b"\x20" + H3 + tensor_bcs([1.0, -2.5], [2])),
    ),
    ("AddStakeToModel", AddStakeToModel(MODEL, COIN, 5), tx_bcs(17, MODEL + COIN_BCS + b"\x01" + q(5))),
    ("AddStakeToModel, all", AddStakeToModel(MODEL, COIN, None), tx_bcs(17, MODEL + COIN_BCS + b"\x00")),
    (
        "SubmitData",
        SubmitData(
            TARGET, Manifest(URL, H2, 5_000), MODEL, SomaTensor.from_values([0.5, 0.25, 0.125]),
            SomaTensor.from_values([0.75]), SomaTensor.from_values([3.5]), COIN,
        ),
        tx_bcs(
            22,
            TARGET + manifest_bcs(URL, H2, 5_000) + MODEL + tensor_bcs([0.5, 0.25, 0.125], [3])
            + tensor_bcs([0.75], [1]) + tensor_bcs([3.5], [1]) + COIN_BCS,
        ),
    ),
    ("ClaimRewards", ClaimRewards(TARGET), tx_bcs(23, TARGET)),
]


@pytest.mark.parametrize(("name", "kind", "expected"), CASES, ids=[c[0] for c in CASES])
def test_sdk_kinds_have_the_rust_layout(name: str, kind: TransactionKind, expected: bytes) -> None:
    tx = TransactionData(kind, SENDER, (COIN,))
    assert tx.encode() == expected
    assert TransactionData.decode(expected) == tx


def test_variant_indices_follow_section_13_3() -> None:
    names = [
        "Genesis", "ConsensusCommitPrologueV1", "ChangeEpoch", "AddValidator", "RemoveValidator", "ReportValidator",
        "UndoReportValidator", "UpdateValidatorMetadata", "SetCommissionRate", "TransferCoin", "PayCoins",
        "TransferObjects", "AddStake", "WithdrawStake", "CreateModel", "CommitModel", "RevealModel",
        "AddStakeToModel", "SetModelCommissionRate", "DeactivateModel", "ReportModel", "UndoReportModel",
        "SubmitData", "ClaimRewards", "ReportSubmission", "UndoReportSubmission",
    ]
    assert [k.__name__ for k in KINDS] == names
    assert [k.VARIANT for k in KINDS] == list(range(26))


@pytest.mark.parametrize("cls", KINDS, ids=[k.__name__ for k in KINDS])
@fuzz(0.4)
@given(rng=st.randoms(use_true_random=False))
def test_every_kind_round_trips(cls: type[TransactionKind], rng: random.Random) -> None:
    tx = kit.transaction(rng, cls)
    encoded = tx.encode()
    assert encoded[0] == 0 and encoded[1] == cls.VARIANT
    decoded = TransactionData.decode(encoded)
    assert decoded == tx and type(decoded.kind) is cls
    assert decoded.encode() == encoded


def test_decode_is_strict() -> None:
    good = CASES[0][2]
    with pytest.raises(BcsError, match="TransactionData variant"):
        TransactionData.decode(b"\x01" + good[1:])
    with pytest.raises(BcsError, match="TransactionKind variant index 26"):
        TransactionData.decode(b"\x00\x1a" + good[2:])
    with pytest.raises(BcsError, match="trailing"):
        TransactionData.decode(good + b"\x00")
    with pytest.raises(BcsError):
        TransactionData.decode(good[:-1])
    with pytest.raises(BcsError, match="Digest must be 32"):
        TransactionData.decode(tx_bcs(23, TARGET)[:-33] + b"\x1f" + bytes(31))


def test_kinds_are_immutable_values() -> None:
    kind = ClaimRewards(TARGET)
    with pytest.raises(dataclasses.FrozenInstanceError):
        kind.target_id = MODEL  # type: ignore[misc]
    assert ClaimRewards(TARGET) == kind and hash(ClaimRewards(TARGET)) == hash(kind)
    with pytest.raises(BcsError):
        ClaimRewards(b"short")


# --------------------------------------------------------------------------------------------- objects


def test_object_layout() -> None:
    """ObjectInner: type variant, version, bytes(id ‖ contents), owner, previous tx digest."""
    oid = bytes([0x42]) * 32
    coin = Object(oid, ObjectType.COIN, 3, coin_contents(2_000_000_000), AddressOwner(SENDER), H1)
    expected = b"\x01" + q(3) + bytes((40,)) + oid + q(2_000_000_000) + b"\x00" + SENDER + b"\x20" + H1
    assert coin.encode() == expected
    assert Object.decode(expected) == coin
    assert coin_balance(coin.contents) == 2_000_000_000
    shared = Object(oid, ObjectType.TARGET, 1, b"", SharedOwner(1), H2)
    assert shared.encode() == b"\x03" + q(1) + b"\x20" + oid + b"\x01" + q(1) + b"\x20" + H2
    frozen = Object(oid, ObjectType.SYSTEM_STATE, 0, b"\x09", ImmutableOwner(), H3)
    assert frozen.encode() == b"\x00" + q(0) + b"\x21" + oid + b"\x09" + b"\x02" + b"\x20" + H3


def test_staked_soma_and_target_contents() -> None:
    staked = StakedSoma(MODEL, 4, 10**9)
    assert staked.encode() == MODEL + q(4, 10**9)
    assert StakedSoma.decode(staked.encode()) == staked

    open_target = Target(
        SomaTensor.from_values([1.0]), (MODEL,), SomaTensor.from_values([1.05]), 12_685_185, 7
    )
    expected = (
        tensor_bcs([1.0], [1]) + b"\x01" + MODEL + tensor_bcs([1.05], [1]) + q(12_685_185, 7)
        + b"\x00"  # Open
        + b"\x00" * 3  # submitter, winning model, winning owner: None
        + q(0)  # bond
        + b"\x00" * 4  # manifest, embedding, distance, loss: None
        + b"\x00"  # no reports
    )
    assert open_target.encode() == expected
    assert Target.decode(expected) == open_target

    filled = dataclasses.replace(
        open_target, status=TargetStatusKind.FILLED, fill_epoch=8, submitter=SENDER, bond_amount=325_000,
        submission_reports=frozenset({H2, H1}),
    )
    encoded = filled.encode()
    assert b"\x01" + q(8) + b"\x01" + SENDER in encoded  # Filled{fill_epoch: 8}, Some(submitter)
    assert encoded.endswith(b"\x02" + H1 + H2)  # BTreeSet: sorted
    assert Target.decode(encoded) == filled
    with pytest.raises(BcsError):
        dataclasses.replace(open_target, fill_epoch=3)


@fuzz(1.0)
@given(rng=st.randoms(use_true_random=False))
def test_objects_and_targets_round_trip(rng: random.Random) -> None:
    o = kit.obj(rng)
    assert Object.decode(o.encode()) == o
    t = kit.target(rng)
    assert Target.decode(t.encode()) == t
