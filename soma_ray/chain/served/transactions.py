"""A transaction as soma-sdk sends it (protobuf fields) → `soma_ray.protocol.wire` values.

The client does not send the BCS it signed: it sends the transaction's fields
(`ExecuteTransactionRequest.transaction`) and the server rebuilds `TransactionData` from them,
exactly as the node's conversion does (rpc/src/proto/soma/transaction.rs and
rpc/src/utils/types_conversions.rs at tag sdk-v0.1.15; protocol.md §13.3):

- manifest URLs are kept as received (the SDK sends the normalised text it signed);
- float lists become tensors of shape `[len]`, the distance score one of shape `[1]`;
- `PayCoins.amounts` is always `Some` (an empty list stays an empty list);
- an optional field (`TransferCoin.amount`, `AddStakeToModel.amount`, …) is `None` only when absent.

Anything missing or malformed raises `BadTransaction` with the field's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from soma_ray.protocol.wire import transaction as kinds
from soma_ray.protocol.wire.base import Manifest, ObjectRef, SomaTensor, parse_address
from soma_ray.protocol.wire.digests import from_base58
from soma_ray.protocol.wire.signatures import ED25519_FLAG, SignatureError, UserSignature
from soma_ray.protocol.wire.transaction import TransactionData, TransactionKind


class BadTransaction(ValueError):
    """A request field that cannot be a transaction (answered as InvalidArgument)."""


def _need(message: Any, field: str, where: str) -> Any:
    if not message.HasField(field):
        raise BadTransaction(f"missing {where}.{field}")
    return getattr(message, field)


def _opt(message: Any, field: str) -> Any:
    return getattr(message, field) if message.HasField(field) else None


def _address(text: str, where: str) -> bytes:
    try:
        return parse_address(text)
    except ValueError:
        raise BadTransaction(f"invalid {where}: {text!r} is not an address or object id") from None


def _need_address(message: Any, field: str, where: str) -> bytes:
    return _address(_need(message, field, where), f"{where}.{field}")


def _digest(text: str, where: str) -> bytes:
    try:
        return from_base58(text)
    except ValueError:
        raise BadTransaction(f"invalid {where}: {text!r} is not a base58 digest") from None


def object_ref(message: Any, where: str) -> ObjectRef:
    return ObjectRef(
        _need_address(message, "object_id", where),
        int(_need(message, "version", where)),
        _digest(_need(message, "digest", where), f"{where}.digest"),
    )


def _need_ref(message: Any, field: str, where: str) -> ObjectRef:
    return object_ref(_need(message, field, where), f"{where}.{field}")


def _need_bytes(message: Any, field: str, where: str) -> bytes:
    return bytes(_need(message, field, where))


def _opt_bytes(message: Any, field: str) -> bytes | None:
    value = _opt(message, field)
    return None if value is None else bytes(value)


def manifest(message: Any, where: str) -> Manifest:
    """`Manifest::V1{url, Metadata::V1{checksum, size}}`; the URL exactly as received."""
    if message.WhichOneof("version") != "v1":
        raise BadTransaction(f"missing {where}.v1")
    v1 = message.v1
    metadata = _need(v1, "metadata", f"{where}.v1")
    if metadata.WhichOneof("version") != "v1":
        raise BadTransaction(f"missing {where}.v1.metadata.v1")
    meta = metadata.v1
    return Manifest(
        _need(v1, "url", f"{where}.v1"),
        _need_bytes(meta, "checksum", f"{where}.v1.metadata.v1"),
        int(_need(meta, "size", f"{where}.v1.metadata.v1")),
    )


def tensor(values: Sequence[float], shape: Sequence[int] | None = None) -> SomaTensor:
    return SomaTensor.from_values(list(values), shape)


def _create_model(m: Any, w: str) -> TransactionKind:
    return kinds.CreateModel(
        int(_need(m, "stake_amount", w)), int(_need(m, "commission_rate", w)), int(_need(m, "architecture_version", w))
    )


def _commit_model(m: Any, w: str) -> TransactionKind:
    return kinds.CommitModel(
        _need_address(m, "model_id", w),
        manifest(_need(m, "manifest", w), f"{w}.manifest"),
        _need_bytes(m, "weights_commitment", w),
        _need_bytes(m, "embedding_commitment", w),
        _need_bytes(m, "decryption_key_commitment", w),
    )


def _reveal_model(m: Any, w: str) -> TransactionKind:
    return kinds.RevealModel(_need_address(m, "model_id", w), _need_bytes(m, "decryption_key", w), tensor(m.embedding))


def _add_stake_to_model(m: Any, w: str) -> TransactionKind:
    return kinds.AddStakeToModel(_need_address(m, "model_id", w), _need_ref(m, "coin_ref", w), _opt(m, "amount"))


def _submit_data(m: Any, w: str) -> TransactionKind:
    data_manifest = _need(m, "data_manifest", w)
    return kinds.SubmitData(
        _need_address(m, "target_id", w),
        manifest(_need(data_manifest, "manifest", f"{w}.data_manifest"), f"{w}.data_manifest.manifest"),
        _need_address(m, "model_id", w),
        tensor(m.embedding),
        tensor([_need(m, "distance_score", w)], [1]),
        tensor(m.loss_score),
        _need_ref(m, "bond_coin", w),
    )


def _transfer_coin(m: Any, w: str) -> TransactionKind:
    return kinds.TransferCoin(_need_ref(m, "coin", w), _opt(m, "amount"), _need_address(m, "recipient", w))


def _pay_coins(m: Any, w: str) -> TransactionKind:
    return kinds.PayCoins(
        tuple(object_ref(c, f"{w}.coins[{i}]") for i, c in enumerate(m.coins)),
        tuple(int(a) for a in m.amounts),  # always Some, even when empty (§13.3)
        tuple(_address(r, f"{w}.recipients[{i}]") for i, r in enumerate(m.recipients)),
    )


def _transfer_objects(m: Any, w: str) -> TransactionKind:
    return kinds.TransferObjects(
        tuple(object_ref(o, f"{w}.objects[{i}]") for i, o in enumerate(m.objects)), _need_address(m, "recipient", w)
    )


def _add_stake(m: Any, w: str) -> TransactionKind:
    return kinds.AddStake(_need_address(m, "address", w), _need_ref(m, "coin_ref", w), _opt(m, "amount"))


def _add_validator(m: Any, w: str) -> TransactionKind:
    fields = (
        "pubkey_bytes", "network_pubkey_bytes", "worker_pubkey_bytes", "proof_of_possession", "net_address",
        "p2p_address", "primary_address", "proxy_address",
    )
    return kinds.AddValidator(*(_need_bytes(m, f, w) for f in fields))


def _update_validator_metadata(m: Any, w: str) -> TransactionKind:
    fields = (
        "next_epoch_network_address", "next_epoch_p2p_address", "next_epoch_primary_address",
        "next_epoch_proxy_address", "next_epoch_protocol_pubkey", "next_epoch_worker_pubkey",
        "next_epoch_network_pubkey", "next_epoch_proof_of_possession",
    )
    return kinds.UpdateValidatorMetadata(*(_opt_bytes(m, f) for f in fields))


_KINDS: dict[str, Callable[[Any, str], TransactionKind]] = {
    "create_model": _create_model,
    "commit_model": _commit_model,
    "reveal_model": _reveal_model,
    "add_stake_to_model": _add_stake_to_model,
    "set_model_commission_rate": lambda m, w: kinds.SetModelCommissionRate(
        _need_address(m, "model_id", w), int(_need(m, "new_rate", w))
    ),
    "deactivate_model": lambda m, w: kinds.DeactivateModel(_need_address(m, "model_id", w)),
    "report_model": lambda m, w: kinds.ReportModel(_need_address(m, "model_id", w)),
    "undo_report_model": lambda m, w: kinds.UndoReportModel(_need_address(m, "model_id", w)),
    "submit_data": _submit_data,
    "claim_rewards": lambda m, w: kinds.ClaimRewards(_need_address(m, "target_id", w)),
    "report_submission": lambda m, w: kinds.ReportSubmission(_need_address(m, "target_id", w)),
    "undo_report_submission": lambda m, w: kinds.UndoReportSubmission(_need_address(m, "target_id", w)),
    "transfer_coin": _transfer_coin,
    "pay_coins": _pay_coins,
    "transfer_objects": _transfer_objects,
    "add_stake": _add_stake,
    "withdraw_stake": lambda m, w: kinds.WithdrawStake(_need_ref(m, "staked_soma", w)),
    "add_validator": _add_validator,
    "remove_validator": lambda m, w: kinds.RemoveValidator(_need_bytes(m, "pubkey_bytes", w)),
    "report_validator": lambda m, w: kinds.ReportValidator(_need_address(m, "reportee", w)),
    "undo_report_validator": lambda m, w: kinds.UndoReportValidator(_need_address(m, "reportee", w)),
    "update_validator_metadata": _update_validator_metadata,
    "set_commission_rate": lambda m, w: kinds.SetCommissionRate(int(_need(m, "new_rate", w))),
}


def transaction_kind(message: Any) -> TransactionKind:
    which = message.WhichOneof("kind")
    if which is None:
        raise BadTransaction("missing transaction.kind (or a kind this network does not know)")
    return _KINDS[which](getattr(message, which), f"transaction.kind.{which}")


def transaction_from_proto(message: Any) -> TransactionData:
    """`TransactionData::V1{kind, sender, gas_payment}` rebuilt from `ExecuteTransactionRequest.transaction`."""
    try:
        kind = transaction_kind(_need(message, "kind", "transaction"))
        sender = _need_address(message, "sender", "transaction")
        gas = tuple(object_ref(g, f"transaction.gas_payment[{i}]") for i, g in enumerate(message.gas_payment))
        return TransactionData(kind, sender, gas)
    except BadTransaction:
        raise
    except ValueError as err:  # a value the codec refuses (a 31-byte digest, a relative URL, ...)
        raise BadTransaction(f"invalid transaction: {err}") from None


def signatures_from_proto(messages: Sequence[Any]) -> list[UserSignature]:
    """Ed25519 simple signatures (the only kind soma-sdk 0.1.15 makes)."""
    found = []
    for i, message in enumerate(messages):
        if message.WhichOneof("signature") != "simple":
            raise SignatureError("UnsupportedFeatureError", f"signatures[{i}]: only simple Ed25519 signatures are supported")
        simple = message.simple
        scheme = simple.scheme if simple.HasField("scheme") else ED25519_FLAG
        found.append(UserSignature(bytes(simple.signature), bytes(simple.public_key), int(scheme)))
    return found
