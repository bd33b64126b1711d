"""Objects as the chain hashes them, and the contents of coins, stakes and targets (protocol.md §13.3).

`Object` is Rust's `ObjectInner` (serde name `Object`):
`{data: ObjectData{object_type, version: u64, contents: bytes(id ‖ contents)}, owner: Owner,
previous_transaction: Digest}`. Its digest (`digests.object_digest`) is Blake2b-256 over
`b"Object::"` ‖ that BCS. The RPC's `Object.contents` field is the contents **without** the id
prefix; `Object.contents` here is the same (the id is prepended when encoding).

Contents layouts: a coin is its balance (`u64`); `StakedSomaV1{pool_id, stake_activation_epoch,
principal}`; `TargetV1` (§3.1) as below — the SDK decodes a target's contents with this layout in
`fetch_submission_data`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import IntEnum

from soma_ray.protocol.wire import bcs
from soma_ray.protocol.wire.base import (
    Manifest,
    SomaTensor,
    check_address,
    check_digest,
    read_address,
    read_digest,
    write_address,
    write_digest,
)
from soma_ray.protocol.wire.bcs import BcsError, Reader


class ObjectType(IntEnum):
    """`ObjectType` variant indices."""

    SYSTEM_STATE = 0
    COIN = 1
    STAKED_SOMA = 2
    TARGET = 3


# --------------------------------------------------------------------------------------------- Owner


@dataclass(frozen=True)
class AddressOwner:
    """`Owner::AddressOwner(SomaAddress)` (variant 0)."""

    address: bytes

    def __post_init__(self) -> None:
        check_address(self.address, "owner address")

    def encode(self) -> bytes:
        return bcs.variant(0) + write_address(self.address)


@dataclass(frozen=True)
class SharedOwner:
    """`Owner::Shared{initial_shared_version}` (variant 1); targets use version 1."""

    initial_shared_version: int

    def __post_init__(self) -> None:
        bcs.u64(self.initial_shared_version)

    def encode(self) -> bytes:
        return bcs.variant(1) + bcs.u64(self.initial_shared_version)


@dataclass(frozen=True)
class ImmutableOwner:
    """`Owner::Immutable` (variant 2)."""

    def encode(self) -> bytes:
        return bcs.variant(2)


Owner = AddressOwner | SharedOwner | ImmutableOwner


def read_owner(reader: Reader) -> Owner:
    index = reader.variant(3, "Owner")
    if index == 0:
        return AddressOwner(read_address(reader))
    if index == 1:
        return SharedOwner(reader.u64())
    return ImmutableOwner()


# --------------------------------------------------------------------------------------------- Object


@dataclass(frozen=True)
class Object:
    """One object at one version: what `ListOwnedObjects`/`GetObject` describe and the chain hashes."""

    object_id: bytes
    object_type: ObjectType
    version: int
    contents: bytes
    owner: Owner
    previous_transaction: bytes

    def __post_init__(self) -> None:
        check_address(self.object_id, "object id")
        check_digest(self.previous_transaction, "previous transaction digest")
        bcs.u64(self.version)

    def encode(self) -> bytes:
        """BCS of `ObjectInner` (the bytes `object_digest` hashes)."""
        return (
            bcs.variant(int(self.object_type))
            + bcs.u64(self.version)
            + bcs.byte_vector(self.object_id + self.contents)
            + self.owner.encode()
            + write_digest(self.previous_transaction)
        )

    @classmethod
    def read(cls, reader: Reader) -> Object:
        object_type = ObjectType(reader.variant(len(ObjectType), "ObjectType"))
        version = reader.u64()
        raw = reader.byte_vector()
        if len(raw) < 32:
            raise BcsError(f"object contents shorter than an object id ({len(raw)} bytes)")
        owner = read_owner(reader)
        return cls(raw[:32], object_type, version, raw[32:], owner, read_digest(reader))

    @classmethod
    def decode(cls, data: bytes) -> Object:
        return bcs.decode_all(data, cls.read)


# --------------------------------------------------------------------------------------------- contents


def coin_contents(balance: int) -> bytes:
    """A coin's contents: its balance in shannons as a `u64`."""
    return bcs.u64(balance)


def coin_balance(contents: bytes) -> int:
    return bcs.decode_all(contents, Reader.u64)


@dataclass(frozen=True)
class StakedSoma:
    """`StakedSomaV1{pool_id: ObjectID, stake_activation_epoch: u64, principal: u64}`."""

    pool_id: bytes
    stake_activation_epoch: int
    principal: int

    def __post_init__(self) -> None:
        check_address(self.pool_id, "pool id")

    def encode(self) -> bytes:
        return write_address(self.pool_id) + bcs.u64(self.stake_activation_epoch) + bcs.u64(self.principal)

    @classmethod
    def read(cls, reader: Reader) -> StakedSoma:
        return cls(read_address(reader), reader.u64(), reader.u64())

    @classmethod
    def decode(cls, data: bytes) -> StakedSoma:
        return bcs.decode_all(data, cls.read)


class TargetStatusKind(IntEnum):
    """`TargetStatus` variant indices: `Open`, `Filled{fill_epoch}`, `Claimed`."""

    OPEN = 0
    FILLED = 1
    CLAIMED = 2


def _write_tensor(t: SomaTensor) -> bytes:
    return t.encode()


def _write_manifest(m: Manifest) -> bytes:
    return m.encode()


@dataclass(frozen=True)
class Target:
    """`TargetV1`, field for field (protocol.md §3.1); `fill_epoch` is set only when `status` is FILLED.

    `submission_reports` is a `BTreeSet<SomaAddress>`: encoded sorted by bytes.
    """

    embedding: SomaTensor
    model_ids: tuple[bytes, ...]
    distance_threshold: SomaTensor
    reward_pool: int
    generation_epoch: int
    status: TargetStatusKind = TargetStatusKind.OPEN
    fill_epoch: int | None = None
    submitter: bytes | None = None
    winning_model_id: bytes | None = None
    winning_model_owner: bytes | None = None
    bond_amount: int = 0
    winning_data_manifest: Manifest | None = None
    winning_embedding: SomaTensor | None = None
    winning_distance_score: SomaTensor | None = None
    winning_loss_score: SomaTensor | None = None
    submission_reports: frozenset[bytes] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if (self.status == TargetStatusKind.FILLED) != (self.fill_epoch is not None):
            raise BcsError("a target has a fill_epoch exactly when its status is Filled")
        for model_id in self.model_ids:
            check_address(model_id, "model id")
        for address in (self.submitter, self.winning_model_id, self.winning_model_owner):
            if address is not None:
                check_address(address)
        for reporter in self.submission_reports:
            check_address(reporter, "reporter")

    def _status(self) -> bytes:
        out = bcs.variant(int(self.status))
        if self.fill_epoch is not None:
            out += bcs.u64(self.fill_epoch)
        return out

    def encode(self) -> bytes:
        return (
            self.embedding.encode()
            + bcs.vector(self.model_ids, write_address)
            + self.distance_threshold.encode()
            + bcs.u64(self.reward_pool)
            + bcs.u64(self.generation_epoch)
            + self._status()
            + bcs.option(self.submitter, write_address)
            + bcs.option(self.winning_model_id, write_address)
            + bcs.option(self.winning_model_owner, write_address)
            + bcs.u64(self.bond_amount)
            + bcs.option(self.winning_data_manifest, _write_manifest)
            + bcs.option(self.winning_embedding, _write_tensor)
            + bcs.option(self.winning_distance_score, _write_tensor)
            + bcs.option(self.winning_loss_score, _write_tensor)
            + bcs.vector(sorted(self.submission_reports), write_address)
        )

    @classmethod
    def read(cls, reader: Reader) -> Target:
        embedding = SomaTensor.read(reader)
        model_ids = tuple(reader.vector(read_address))
        threshold = SomaTensor.read(reader)
        reward_pool = reader.u64()
        generation_epoch = reader.u64()
        status = TargetStatusKind(reader.variant(len(TargetStatusKind), "TargetStatus"))
        fill_epoch = reader.u64() if status == TargetStatusKind.FILLED else None
        submitter = reader.option(read_address)
        winning_model_id = reader.option(read_address)
        winning_model_owner = reader.option(read_address)
        bond_amount = reader.u64()
        manifest = reader.option(Manifest.read)
        winning_embedding = reader.option(SomaTensor.read)
        winning_distance = reader.option(SomaTensor.read)
        winning_loss = reader.option(SomaTensor.read)
        reports = reader.vector(read_address)
        if any(a >= b for a, b in itertools.pairwise(reports)):
            raise BcsError("submission_reports is a BTreeSet: addresses must be strictly increasing")
        return cls(
            embedding, model_ids, threshold, reward_pool, generation_epoch, status, fill_epoch, submitter,
            winning_model_id, winning_model_owner, bond_amount, manifest, winning_embedding, winning_distance,
            winning_loss, frozenset(reports),
        )

    @classmethod
    def decode(cls, data: bytes) -> Target:
        return bcs.decode_all(data, cls.read)
