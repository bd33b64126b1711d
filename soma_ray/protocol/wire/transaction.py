"""`TransactionData` and every `TransactionKind`, as BCS (protocol.md §13.3).

`TransactionData::V1{kind: TransactionKind, sender: SomaAddress, gas_payment: Vec<ObjectRef>}` is
written as variant 0, then the three fields. A `TransactionKind` is its variant index (0..25, the
table in §13.3) followed by its fields in declaration order. One frozen dataclass per kind below,
named as in Rust, each with `VARIANT`; `TransactionData.encode()/decode()` round-trip exactly.

Field order follows the Rust struct declarations at soma-sdk 0.1.15 — it is **not** the protobuf
field order (e.g. `AddValidator` has `proof_of_possession` fourth in BCS, eighth in the proto).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import ClassVar

from soma_ray.protocol.wire import bcs
from soma_ray.protocol.wire.base import (
    Manifest,
    ObjectRef,
    SomaTensor,
    check_address,
    check_digest,
    read_address,
    read_digest,
    write_address,
    write_digest,
)
from soma_ray.protocol.wire.bcs import BcsError, Reader
from soma_ray.protocol.wire.objects import Object


def _ref(r: ObjectRef) -> bytes:
    return r.encode()


def _bytes_opt(value: bytes | None) -> bytes:
    return bcs.option(value, bcs.byte_vector)


class TransactionKind(ABC):
    """One variant of Rust's `TransactionKind`: `VARIANT` is its BCS index."""

    VARIANT: ClassVar[int]

    @abstractmethod
    def encode_fields(self) -> bytes:
        """The variant's fields, without the index."""

    def encode(self) -> bytes:
        return bcs.variant(self.VARIANT) + self.encode_fields()

    @classmethod
    @abstractmethod
    def read_fields(cls, reader: Reader) -> TransactionKind:
        """The variant's fields (the index has been read)."""

    @classmethod
    def read(cls, reader: Reader) -> TransactionKind:
        index = reader.variant(len(KINDS), "TransactionKind")
        return KINDS[index].read_fields(reader)

    @classmethod
    def decode(cls, data: bytes) -> TransactionKind:
        return bcs.decode_all(data, TransactionKind.read)


class _OneId(TransactionKind):
    """A kind whose one field is a 32-byte id (an address, a model or a target id)."""

    ID_LABEL: ClassVar[str | None] = None  # how a bad id is named in the error

    def _id(self) -> bytes:
        value: bytes = getattr(self, fields(self)[0].name)  # type: ignore[arg-type]
        return value

    def __post_init__(self) -> None:
        if self.ID_LABEL is None:
            check_address(self._id())
        else:
            check_address(self._id(), self.ID_LABEL)

    def encode_fields(self) -> bytes:
        return write_address(self._id())

    @classmethod
    def read_fields(cls, reader: Reader) -> TransactionKind:
        return cls(read_address(reader))  # type: ignore[call-arg]


# --------------------------------------------------------------------------------------------- system


@dataclass(frozen=True)
class Genesis(TransactionKind):
    """`Genesis(GenesisTransaction{objects: Vec<Object>})`."""

    VARIANT: ClassVar[int] = 0
    objects: tuple[Object, ...]

    def encode_fields(self) -> bytes:
        return bcs.vector(self.objects, Object.encode)

    @classmethod
    def read_fields(cls, reader: Reader) -> Genesis:
        return cls(tuple(reader.vector(Object.read)))


@dataclass(frozen=True)
class ConsensusCommitPrologueV1(TransactionKind):
    VARIANT: ClassVar[int] = 1
    epoch: int
    round: int
    sub_dag_index: int | None
    commit_timestamp_ms: int
    consensus_commit_digest: bytes
    additional_state_digest: bytes

    def __post_init__(self) -> None:
        check_digest(self.consensus_commit_digest)
        check_digest(self.additional_state_digest)

    def encode_fields(self) -> bytes:
        return (
            bcs.u64(self.epoch)
            + bcs.u64(self.round)
            + bcs.option(self.sub_dag_index, bcs.u64)
            + bcs.u64(self.commit_timestamp_ms)
            + write_digest(self.consensus_commit_digest)
            + write_digest(self.additional_state_digest)
        )

    @classmethod
    def read_fields(cls, reader: Reader) -> ConsensusCommitPrologueV1:
        return cls(
            reader.u64(), reader.u64(), reader.option(Reader.u64), reader.u64(), read_digest(reader),
            read_digest(reader),
        )


@dataclass(frozen=True)
class ChangeEpoch(TransactionKind):
    VARIANT: ClassVar[int] = 2
    epoch: int
    epoch_start_timestamp_ms: int
    protocol_version: int
    fees: int
    epoch_randomness: bytes

    def encode_fields(self) -> bytes:
        return (
            bcs.u64(self.epoch)
            + bcs.u64(self.epoch_start_timestamp_ms)
            + bcs.u64(self.protocol_version)
            + bcs.u64(self.fees)
            + bcs.byte_vector(self.epoch_randomness)
        )

    @classmethod
    def read_fields(cls, reader: Reader) -> ChangeEpoch:
        return cls(reader.u64(), reader.u64(), reader.u64(), reader.u64(), reader.byte_vector())


# --------------------------------------------------------------------------------------------- validators


@dataclass(frozen=True)
class AddValidator(TransactionKind):
    """`AddValidator(AddValidatorArgs)`: eight `Vec<u8>` in this (BCS) order."""

    VARIANT: ClassVar[int] = 3
    pubkey_bytes: bytes
    network_pubkey_bytes: bytes
    worker_pubkey_bytes: bytes
    proof_of_possession: bytes
    net_address: bytes
    p2p_address: bytes
    primary_address: bytes
    proxy_address: bytes

    def encode_fields(self) -> bytes:
        return b"".join(
            bcs.byte_vector(v)
            for v in (
                self.pubkey_bytes, self.network_pubkey_bytes, self.worker_pubkey_bytes, self.proof_of_possession,
                self.net_address, self.p2p_address, self.primary_address, self.proxy_address,
            )
        )

    @classmethod
    def read_fields(cls, reader: Reader) -> AddValidator:
        return cls(*(reader.byte_vector() for _ in range(8)))


@dataclass(frozen=True)
class RemoveValidator(TransactionKind):
    VARIANT: ClassVar[int] = 4
    pubkey_bytes: bytes

    def encode_fields(self) -> bytes:
        return bcs.byte_vector(self.pubkey_bytes)

    @classmethod
    def read_fields(cls, reader: Reader) -> RemoveValidator:
        return cls(reader.byte_vector())


@dataclass(frozen=True)
class ReportValidator(_OneId):
    VARIANT: ClassVar[int] = 5
    reportee: bytes


@dataclass(frozen=True)
class UndoReportValidator(_OneId):
    VARIANT: ClassVar[int] = 6
    reportee: bytes


@dataclass(frozen=True)
class UpdateValidatorMetadata(TransactionKind):
    """`UpdateValidatorMetadata(UpdateValidatorMetadataArgs)`: eight `Option<Vec<u8>>` in this order."""

    VARIANT: ClassVar[int] = 7
    next_epoch_network_address: bytes | None = None
    next_epoch_p2p_address: bytes | None = None
    next_epoch_primary_address: bytes | None = None
    next_epoch_proxy_address: bytes | None = None
    next_epoch_protocol_pubkey: bytes | None = None
    next_epoch_worker_pubkey: bytes | None = None
    next_epoch_network_pubkey: bytes | None = None
    next_epoch_proof_of_possession: bytes | None = None

    def encode_fields(self) -> bytes:
        return b"".join(
            _bytes_opt(v)
            for v in (
                self.next_epoch_network_address, self.next_epoch_p2p_address, self.next_epoch_primary_address,
                self.next_epoch_proxy_address, self.next_epoch_protocol_pubkey, self.next_epoch_worker_pubkey,
                self.next_epoch_network_pubkey, self.next_epoch_proof_of_possession,
            )
        )

    @classmethod
    def read_fields(cls, reader: Reader) -> UpdateValidatorMetadata:
        return cls(*(reader.option(Reader.byte_vector) for _ in range(8)))


@dataclass(frozen=True)
class SetCommissionRate(TransactionKind):
    VARIANT: ClassVar[int] = 8
    new_rate: int

    def encode_fields(self) -> bytes:
        return bcs.u64(self.new_rate)

    @classmethod
    def read_fields(cls, reader: Reader) -> SetCommissionRate:
        return cls(reader.u64())


# --------------------------------------------------------------------------------------------- coins, objects, stake


@dataclass(frozen=True)
class TransferCoin(TransactionKind):
    """`TransferCoin{coin, amount: Option<u64>, recipient}`; `merge_coins` sends `amount=None` to self."""

    VARIANT: ClassVar[int] = 9
    coin: ObjectRef
    amount: int | None
    recipient: bytes

    def __post_init__(self) -> None:
        check_address(self.recipient, "recipient")

    def encode_fields(self) -> bytes:
        return self.coin.encode() + bcs.option(self.amount, bcs.u64) + write_address(self.recipient)

    @classmethod
    def read_fields(cls, reader: Reader) -> TransferCoin:
        return cls(ObjectRef.read(reader), reader.option(Reader.u64), read_address(reader))


def _u64s(values: tuple[int, ...]) -> bytes:
    return bcs.vector(values, bcs.u64)


def _read_u64s(reader: Reader) -> tuple[int, ...]:
    return tuple(reader.vector(Reader.u64))


@dataclass(frozen=True)
class PayCoins(TransactionKind):
    """`PayCoins{coins: Vec<ObjectRef>, amounts: Option<Vec<u64>>, recipients: Vec<SomaAddress>}`."""

    VARIANT: ClassVar[int] = 10
    coins: tuple[ObjectRef, ...]
    amounts: tuple[int, ...] | None
    recipients: tuple[bytes, ...]

    def __post_init__(self) -> None:
        for r in self.recipients:
            check_address(r, "recipient")

    def encode_fields(self) -> bytes:
        return (
            bcs.vector(self.coins, _ref)
            + bcs.option(self.amounts, _u64s)
            + bcs.vector(self.recipients, write_address)
        )

    @classmethod
    def read_fields(cls, reader: Reader) -> PayCoins:
        return cls(
            tuple(reader.vector(ObjectRef.read)), reader.option(_read_u64s), tuple(reader.vector(read_address))
        )


@dataclass(frozen=True)
class TransferObjects(TransactionKind):
    VARIANT: ClassVar[int] = 11
    objects: tuple[ObjectRef, ...]
    recipient: bytes

    def __post_init__(self) -> None:
        check_address(self.recipient, "recipient")

    def encode_fields(self) -> bytes:
        return bcs.vector(self.objects, _ref) + write_address(self.recipient)

    @classmethod
    def read_fields(cls, reader: Reader) -> TransferObjects:
        return cls(tuple(reader.vector(ObjectRef.read)), read_address(reader))


@dataclass(frozen=True)
class AddStake(TransactionKind):
    """`AddStake{address (the validator), coin_ref, amount: Option<u64>}`."""

    VARIANT: ClassVar[int] = 12
    address: bytes
    coin_ref: ObjectRef
    amount: int | None

    def __post_init__(self) -> None:
        check_address(self.address, "validator address")

    def encode_fields(self) -> bytes:
        return write_address(self.address) + self.coin_ref.encode() + bcs.option(self.amount, bcs.u64)

    @classmethod
    def read_fields(cls, reader: Reader) -> AddStake:
        return cls(read_address(reader), ObjectRef.read(reader), reader.option(Reader.u64))


@dataclass(frozen=True)
class WithdrawStake(TransactionKind):
    VARIANT: ClassVar[int] = 13
    staked_soma: ObjectRef

    def encode_fields(self) -> bytes:
        return self.staked_soma.encode()

    @classmethod
    def read_fields(cls, reader: Reader) -> WithdrawStake:
        return cls(ObjectRef.read(reader))


# --------------------------------------------------------------------------------------------- models


@dataclass(frozen=True)
class CreateModel(TransactionKind):
    """`CreateModel(CreateModelArgs{stake_amount, commission_rate, architecture_version})`, all u64."""

    VARIANT: ClassVar[int] = 14
    stake_amount: int
    commission_rate: int
    architecture_version: int

    def encode_fields(self) -> bytes:
        return bcs.u64(self.stake_amount) + bcs.u64(self.commission_rate) + bcs.u64(self.architecture_version)

    @classmethod
    def read_fields(cls, reader: Reader) -> CreateModel:
        return cls(reader.u64(), reader.u64(), reader.u64())


@dataclass(frozen=True)
class CommitModel(TransactionKind):
    """`CommitModel(CommitModelArgs{model_id, manifest, weights_commitment, embedding_commitment,
    decryption_key_commitment})`; the commitments are 32-byte digests (protocol.md §2.3)."""

    VARIANT: ClassVar[int] = 15
    model_id: bytes
    manifest: Manifest
    weights_commitment: bytes
    embedding_commitment: bytes
    decryption_key_commitment: bytes

    def __post_init__(self) -> None:
        check_address(self.model_id, "model id")
        check_digest(self.weights_commitment, "weights commitment")
        check_digest(self.embedding_commitment, "embedding commitment")
        check_digest(self.decryption_key_commitment, "decryption key commitment")

    def encode_fields(self) -> bytes:
        return (
            write_address(self.model_id)
            + self.manifest.encode()
            + write_digest(self.weights_commitment)
            + write_digest(self.embedding_commitment)
            + write_digest(self.decryption_key_commitment)
        )

    @classmethod
    def read_fields(cls, reader: Reader) -> CommitModel:
        return cls(
            read_address(reader), Manifest.read(reader), read_digest(reader), read_digest(reader), read_digest(reader)
        )


@dataclass(frozen=True)
class RevealModel(TransactionKind):
    """`RevealModel(RevealModelArgs{model_id, decryption_key (32 raw bytes, serde bytes), embedding})`."""

    VARIANT: ClassVar[int] = 16
    model_id: bytes
    decryption_key: bytes
    embedding: SomaTensor

    def __post_init__(self) -> None:
        check_address(self.model_id, "model id")
        check_digest(self.decryption_key, "decryption key")

    def encode_fields(self) -> bytes:
        return write_address(self.model_id) + write_digest(self.decryption_key) + self.embedding.encode()

    @classmethod
    def read_fields(cls, reader: Reader) -> RevealModel:
        return cls(read_address(reader), read_digest(reader), SomaTensor.read(reader))


@dataclass(frozen=True)
class AddStakeToModel(TransactionKind):
    VARIANT: ClassVar[int] = 17
    model_id: bytes
    coin_ref: ObjectRef
    amount: int | None

    def __post_init__(self) -> None:
        check_address(self.model_id, "model id")

    def encode_fields(self) -> bytes:
        return write_address(self.model_id) + self.coin_ref.encode() + bcs.option(self.amount, bcs.u64)

    @classmethod
    def read_fields(cls, reader: Reader) -> AddStakeToModel:
        return cls(read_address(reader), ObjectRef.read(reader), reader.option(Reader.u64))


@dataclass(frozen=True)
class SetModelCommissionRate(TransactionKind):
    VARIANT: ClassVar[int] = 18
    model_id: bytes
    new_rate: int

    def __post_init__(self) -> None:
        check_address(self.model_id, "model id")

    def encode_fields(self) -> bytes:
        return write_address(self.model_id) + bcs.u64(self.new_rate)

    @classmethod
    def read_fields(cls, reader: Reader) -> SetModelCommissionRate:
        return cls(read_address(reader), reader.u64())


@dataclass(frozen=True)
class DeactivateModel(_OneId):
    VARIANT: ClassVar[int] = 19
    ID_LABEL: ClassVar[str | None] = "model id"
    model_id: bytes


@dataclass(frozen=True)
class ReportModel(_OneId):
    VARIANT: ClassVar[int] = 20
    ID_LABEL: ClassVar[str | None] = "model id"
    model_id: bytes


@dataclass(frozen=True)
class UndoReportModel(_OneId):
    VARIANT: ClassVar[int] = 21
    ID_LABEL: ClassVar[str | None] = "model id"
    model_id: bytes


# --------------------------------------------------------------------------------------------- submissions


@dataclass(frozen=True)
class SubmitData(TransactionKind):
    """`SubmitData(SubmitDataArgs{target_id, data_manifest: SubmissionManifest{manifest}, model_id,
    embedding, distance_score, loss_score, bond_coin})` (protocol.md §4.1). `SubmissionManifest` is a
    one-field struct, so its bytes are the manifest's."""

    VARIANT: ClassVar[int] = 22
    target_id: bytes
    data_manifest: Manifest
    model_id: bytes
    embedding: SomaTensor
    distance_score: SomaTensor
    loss_score: SomaTensor
    bond_coin: ObjectRef

    def __post_init__(self) -> None:
        check_address(self.target_id, "target id")
        check_address(self.model_id, "model id")

    def encode_fields(self) -> bytes:
        return (
            write_address(self.target_id)
            + self.data_manifest.encode()
            + write_address(self.model_id)
            + self.embedding.encode()
            + self.distance_score.encode()
            + self.loss_score.encode()
            + self.bond_coin.encode()
        )

    @classmethod
    def read_fields(cls, reader: Reader) -> SubmitData:
        return cls(
            read_address(reader), Manifest.read(reader), read_address(reader), SomaTensor.read(reader),
            SomaTensor.read(reader), SomaTensor.read(reader), ObjectRef.read(reader),
        )


@dataclass(frozen=True)
class ClaimRewards(_OneId):
    VARIANT: ClassVar[int] = 23
    ID_LABEL: ClassVar[str | None] = "target id"
    target_id: bytes


@dataclass(frozen=True)
class ReportSubmission(_OneId):
    VARIANT: ClassVar[int] = 24
    ID_LABEL: ClassVar[str | None] = "target id"
    target_id: bytes


@dataclass(frozen=True)
class UndoReportSubmission(_OneId):
    VARIANT: ClassVar[int] = 25
    ID_LABEL: ClassVar[str | None] = "target id"
    target_id: bytes


KINDS: tuple[type[TransactionKind], ...] = (
    Genesis, ConsensusCommitPrologueV1, ChangeEpoch, AddValidator, RemoveValidator, ReportValidator,
    UndoReportValidator, UpdateValidatorMetadata, SetCommissionRate, TransferCoin, PayCoins, TransferObjects,
    AddStake, WithdrawStake, CreateModel, CommitModel, RevealModel, AddStakeToModel, SetModelCommissionRate,
    DeactivateModel, ReportModel, UndoReportModel, SubmitData, ClaimRewards, ReportSubmission, UndoReportSubmission,
)
"""Every `TransactionKind`, indexed by its BCS variant index (the table in protocol.md §13.3)."""

SYSTEM_KINDS: frozenset[type[TransactionKind]] = frozenset({Genesis, ConsensusCommitPrologueV1, ChangeEpoch})
"""Kinds only the system issues; a user-signed transaction carrying one is invalid."""


# --------------------------------------------------------------------------------------------- TransactionData


@dataclass(frozen=True)
class TransactionData:
    """`TransactionData::V1{kind, sender, gas_payment}` — what the sender signs (§13.3)."""

    kind: TransactionKind
    sender: bytes
    gas_payment: tuple[ObjectRef, ...]

    def __post_init__(self) -> None:
        check_address(self.sender, "sender")

    def encode(self) -> bytes:
        return (
            bcs.variant(0)
            + self.kind.encode()
            + write_address(self.sender)
            + bcs.vector(self.gas_payment, _ref)
        )

    @classmethod
    def read(cls, reader: Reader) -> TransactionData:
        reader.variant(1, "TransactionData")
        return cls(TransactionKind.read(reader), read_address(reader), tuple(reader.vector(ObjectRef.read)))

    @classmethod
    def decode(cls, data: bytes) -> TransactionData:
        """Strict: unknown variants, malformed values and trailing bytes raise `BcsError`."""
        return bcs.decode_all(data, cls.read)


def _check_table() -> None:
    for index, kind in enumerate(KINDS):
        if kind.VARIANT != index:
            raise BcsError(f"{kind.__name__} has VARIANT {kind.VARIANT}, expected {index}")


_check_table()
