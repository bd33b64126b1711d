"""Running transactions on the simulated network: the sim's own calls and signed transactions.

`run_body` is how every user transaction runs (the sim's Python API and the served network alike):
a body of the sim's rules, then the fees (§4.3); a failing body is undone and only the base fee is
charged. `execute_signed` runs a decoded, signature-checked `TransactionData` as the chain's
authority does (protocol.md §13.3):

1. the transaction must be new (its digest never executed);
2. every owned input (the gas coins, and the coins a kind names) must be the sender's coin at its
   current version and digest — a stale version is refused with the node's own
   `Object (0x…, Version(n), o#…) is not available for consumption, its current version:
   Version(m)`, which soma-sdk's retry logic parses; nothing is written for a refused transaction;
3. the gas coins are merged into the first (`smash_gas`), which pays;
4. the kind runs with the sim's rules (models.py, submissions.py, coins.py) under the real digest,
   so derived ids (`derive_id(digest, n)`) are the chain's;
5. every input and created object is written at the Lamport version (store.py), and the effects
   (`Effects`) say what changed, from which version and digest to which.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from soma_ray.chain import errors
from soma_ray.chain.sim import coins as coin_rules
from soma_ray.chain.sim import models as model_rules
from soma_ray.chain.sim import submissions
from soma_ray.chain.sim.objects import SYSTEM_STATE_ID, TYPE_NAMES, deleted_version, load_object
from soma_ray.chain.sim.store import (
    TxContext,
    begin_tx,
    delete_coin,
    finish_tx,
    get_coin,
    immediate,
    load_state,
    save_state,
    set_coin_balance,
)
from soma_ray.chain.types import Coin
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.protocol.fees import FeeParts, failed_transaction_fee, transaction_fee_parts
from soma_ray.protocol.wire import transaction as kinds
from soma_ray.protocol.wire.base import ObjectRef, address_hex
from soma_ray.protocol.wire.digests import object_digest, to_base58
from soma_ray.protocol.wire.objects import AddressOwner, ObjectType, Owner, coin_balance
from soma_ray.protocol.wire.transaction import TransactionData, TransactionKind

T = TypeVar("T")
Body = Callable[[sqlite3.Connection, TxContext, dict[str, Any], ProtocolParams, str], T]


# -- running a body ----------------------------------------------------------------------------


def run_body(
    conn: sqlite3.Connection,
    ctx: TxContext,
    state: dict[str, Any],
    params: ProtocolParams,
    gas: str,
    body: Body[T],
) -> tuple[T | None, errors.TransactionFailed | None]:
    """Run `body`, then charge base + write + value fees from `gas`; on a `TransactionFailed`,
    undo the body (what happened to the gas before it stands) and charge the base fee."""
    before = (list(ctx.created), list(ctx.mutated), list(ctx.deleted), ctx.value_fee)
    conn.execute("SAVEPOINT body")
    try:
        result = body(conn, ctx, state, params, gas)
        ctx.touch(gas)
        parts = transaction_fee_parts(params, ctx.written_objects(), ctx.value_fee)
        fee = parts.total
        coin = get_coin(conn, gas)
        if coin is None or coin.balance < fee:
            raise errors.InsufficientGas(detail=f"fee {fee} exceeds the gas coin's balance")
        set_coin_balance(conn, ctx, gas, coin.balance - fee)
        if coin.balance == fee:  # a gas coin left at exactly 0 is deleted
            delete_coin(conn, ctx, gas)
        state["fees_this_epoch"] += fee
        save_state(conn, state)
        conn.execute("RELEASE body")
        ctx.fee = parts
        finish_tx(conn, ctx, ok=True, fee=fee, error=None)
        return result, None
    except errors.TransactionFailed as exc:
        conn.execute("ROLLBACK TO body")
        conn.execute("RELEASE body")
        ctx.created[:], ctx.mutated[:], ctx.deleted[:] = before[0], before[1], before[2]
        ctx.value_fee = before[3]
        state = load_state(conn)  # the body may have changed the in-memory copy
        coin = get_coin(conn, gas)
        fee = failed_transaction_fee(params, coin.balance if coin else 0)  # charged even on failure
        if coin is not None:
            set_coin_balance(conn, ctx, gas, coin.balance - fee)
            if coin.balance == fee:  # a gas coin left at exactly 0 is deleted
                delete_coin(conn, ctx, gas)
        state["fees_this_epoch"] += fee
        save_state(conn, state)
        ctx.fee = FeeParts(base=fee)
        finish_tx(conn, ctx, ok=False, fee=fee, error=exc.code)
        exc.digest = ctx.digest_b58
        return None, exc


def gas_too_small(
    conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], coin: Coin | None
) -> errors.TransactionFailed:
    """A gas coin below the base fee is taken whole and deleted (prepare_gas)."""
    fee = coin.balance if coin else 0
    if coin is not None and fee > 0:
        delete_coin(conn, ctx, coin.id)
        state["fees_this_epoch"] += fee
        save_state(conn, state)
    ctx.fee = FeeParts(base=fee)
    finish_tx(conn, ctx, ok=False, fee=fee, error="InsufficientGas")
    return errors.InsufficientGas(digest=ctx.digest_b58, detail=f"{ctx.sender} has no coin covering the base fee")


# -- effects -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectState:
    """One object at one version, as effects show it."""

    version: int
    digest: bytes
    owner: Owner


@dataclass(frozen=True)
class ObjectChange:
    """`ChangedObject`: an object's state before (None: it did not exist) and after (None: deleted)."""

    object_id: str
    object_type: ObjectType
    input: ObjectState | None
    output: ObjectState | None

    @property
    def id_operation(self) -> str:
        if self.input is None:
            return "created"
        return "deleted" if self.output is None else "none"


@dataclass(frozen=True)
class Effects:
    """What one executed transaction did (`TransactionEffects` of the chain)."""

    digest: bytes
    kind: str
    sender: str
    epoch: int
    ok: bool
    error: str | None  # the failure's name (`TransactionFailed.code`)
    error_detail: str | None
    fee: FeeParts
    lamport: int
    changes: tuple[ObjectChange, ...]
    gas_object: str | None
    balance_changes: tuple[tuple[str, int], ...]  # (address, signed shannons), coins only
    dependencies: tuple[bytes, ...] = ()  # the transactions that last wrote the inputs

    @property
    def digest_b58(self) -> str:
        return to_base58(self.digest)


def effects_of(
    conn: sqlite3.Connection, ctx: TxContext, *, kind: str, epoch: int, gas: str | None,
    failure: errors.TransactionFailed | None,
) -> Effects:
    """The effects of the finished transaction `ctx` (read from the database after finish_tx)."""
    assert ctx.lamport is not None
    ids = sorted(set(ctx.inputs) | set(ctx.created) | set(ctx.deleted))
    changes = []
    balances: dict[str, int] = {}
    for object_id in ids:
        before = ctx.inputs.get(object_id)
        after = load_object(conn, object_id)
        if before is None and after is None:
            continue  # an id the rules derived without making an object of it
        obj = after if after is not None else before
        assert obj is not None
        changes.append(ObjectChange(
            object_id=object_id,
            object_type=obj.object_type,
            input=None if before is None else ObjectState(before.version, object_digest(before), before.owner),
            output=None if after is None else ObjectState(after.version, object_digest(after), after.owner),
        ))
        for sign, state in ((-1, before), (1, after)):
            if state is not None and state.object_type is ObjectType.COIN and isinstance(state.owner, AddressOwner):
                owner = address_hex(state.owner.address)
                balances[owner] = balances.get(owner, 0) + sign * coin_balance(state.contents)
    return Effects(
        digest=ctx.digest,
        kind=kind,
        sender=ctx.sender,
        epoch=epoch,
        ok=failure is None,
        error=None if failure is None else failure.code,
        error_detail=None if failure is None else failure.detail,
        fee=ctx.fee,
        lamport=ctx.lamport,
        changes=tuple(changes),
        gas_object=gas,
        balance_changes=tuple((a, d) for a, d in sorted(balances.items()) if d),
        dependencies=tuple(sorted({obj.previous_transaction for obj in ctx.inputs.values()})),
    )


# -- signed transactions -----------------------------------------------------------------------


class TransactionRejected(errors.ChainError):
    """A transaction refused before execution: nothing was written. `reason` says how the RPC
    answers: "InvalidArgument", "NotFound", "AlreadyExists" or "Unimplemented"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _ref_text(ref: ObjectRef) -> str:
    """An `ObjectRef` as the node's errors print it (Rust Debug of the tuple)."""
    return f"({address_hex(ref.object_id)}, Version({ref.version}), o#{to_base58(ref.digest)})"


def not_available(ref: ObjectRef, current: int) -> TransactionRejected:
    return TransactionRejected(
        "InvalidArgument",
        f"Object {_ref_text(ref)} is not available for consumption, its current version: Version({current})",
    )


def _not_found(object_id: str, version: int | None) -> TransactionRejected:
    at = "None" if version is None else f"Some(Version({version}))"
    return TransactionRejected("NotFound", f"Could not find the referenced object {object_id} at version {at}")


def check_owned_input(
    conn: sqlite3.Connection, ref: ObjectRef, sender: str, types: tuple[ObjectType, ...] = (ObjectType.COIN,)
) -> None:
    """An owned input must be the sender's object (a coin, unless the kind names another type) at
    exactly its current version and digest."""
    object_id = address_hex(ref.object_id)
    obj = load_object(conn, object_id)
    if obj is None:
        deleted_at = deleted_version(conn, object_id)
        if deleted_at is not None and ref.version <= deleted_at:
            raise not_available(ref, deleted_at)
        raise _not_found(object_id, ref.version)
    if ref.version < obj.version:
        raise not_available(ref, obj.version)
    if ref.version > obj.version:
        raise _not_found(object_id, ref.version)
    expected = object_digest(obj)
    if ref.digest != expected:
        raise TransactionRejected(
            "InvalidArgument", f"Invalid Object digest for object {object_id}. Expected digest : o#{to_base58(expected)}"
        )
    if obj.object_type not in types:
        raise TransactionRejected("InvalidArgument", f"Object {object_id} is not a {_type_names(types)}")
    if not isinstance(obj.owner, AddressOwner) or address_hex(obj.owner.address) != sender:
        raise TransactionRejected(
            "InvalidArgument",
            f"Object {object_id} is owned by {_owner_text(obj.owner)}, but given owner/signer address is {sender}",
        )


def _type_names(types: tuple[ObjectType, ...]) -> str:
    return " or ".join("coin" if t is ObjectType.COIN else TYPE_NAMES[t] for t in types)


def _owner_text(owner: Owner) -> str:
    if isinstance(owner, AddressOwner):
        return f"account address {address_hex(owner.address)}"
    return type(owner).__name__


# Kinds whose transactions read and write the shared system state (types/src/transaction.rs
# `requires_system_state`), and those that also write a target.
_SYSTEM_KINDS = (
    kinds.AddValidator, kinds.RemoveValidator, kinds.ReportValidator, kinds.UndoReportValidator,
    kinds.SetCommissionRate, kinds.UpdateValidatorMetadata, kinds.AddStake, kinds.WithdrawStake,
    kinds.CreateModel, kinds.CommitModel, kinds.RevealModel, kinds.AddStakeToModel,
    kinds.SetModelCommissionRate, kinds.DeactivateModel, kinds.ReportModel, kinds.UndoReportModel,
    kinds.SubmitData, kinds.ClaimRewards, kinds.ReportSubmission, kinds.UndoReportSubmission,
)
_VALIDATOR_ONLY = (
    kinds.RemoveValidator, kinds.ReportValidator, kinds.UndoReportValidator, kinds.SetCommissionRate,
    kinds.UpdateValidatorMetadata, kinds.ReportModel, kinds.UndoReportModel, kinds.ReportSubmission,
    kinds.UndoReportSubmission,
)
_UNSUPPORTED = (kinds.AddValidator, kinds.AddStake, kinds.TransferObjects)


def owned_inputs(kind: TransactionKind) -> list[ObjectRef]:
    """The owned objects a kind names (besides the gas)."""
    if isinstance(kind, kinds.TransferCoin):
        return [kind.coin]
    if isinstance(kind, kinds.PayCoins):
        return list(kind.coins)
    if isinstance(kind, kinds.AddStakeToModel):
        return [kind.coin_ref]
    if isinstance(kind, kinds.SubmitData):
        return [kind.bond_coin]
    if isinstance(kind, kinds.WithdrawStake):
        return [kind.staked_soma]
    return []


def input_types(kind: TransactionKind) -> tuple[ObjectType, ...]:
    """The object types a kind's named inputs may be; the executor then checks the exact type
    (a coin named as the StakedSoma fails with InvalidObjectType, charged)."""
    if isinstance(kind, kinds.WithdrawStake):
        return (ObjectType.STAKED_SOMA, ObjectType.COIN)
    return (ObjectType.COIN,)


def target_input(kind: TransactionKind) -> str | None:
    if isinstance(kind, (kinds.SubmitData, kinds.ClaimRewards, kinds.ReportSubmission, kinds.UndoReportSubmission)):
        return address_hex(kind.target_id)
    return None


def _b58(raw: bytes) -> str:
    return to_base58(raw)


def _f32(tensor: Any) -> np.ndarray:
    return np.frombuffer(tensor.data, dtype="<f4").copy()


def body_of(kind: TransactionKind, *, target_deleted: bool = False) -> Body[Any]:
    """The sim's rules for one decoded kind."""

    def body(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], p: ProtocolParams, gas: str) -> Any:
        if target_deleted:
            raise errors.InputObjectDeleted(detail=target_input(kind))
        if isinstance(kind, _VALIDATOR_ONLY):
            raise errors.NotAValidator(detail=f"{ctx.sender} is not a validator of the simulated network")
        if isinstance(kind, kinds.CreateModel):
            return model_rules.create_model(
                conn, ctx, state, p, gas, stake=kind.stake_amount, commission_rate=kind.commission_rate,
                architecture_version=kind.architecture_version,
            )
        if isinstance(kind, kinds.CommitModel):
            return model_rules.commit_commitments(
                conn, ctx, state, model_id=address_hex(kind.model_id), weights_url=kind.manifest.url,
                checksum=_b58(kind.manifest.checksum), size=kind.manifest.size,
                weights_commitment=_b58(kind.weights_commitment),
                embedding_commitment=_b58(kind.embedding_commitment),
                decryption_key_commitment=_b58(kind.decryption_key_commitment),
            )
        if isinstance(kind, kinds.RevealModel):
            return model_rules.reveal_model(
                conn, ctx, state, model_id=address_hex(kind.model_id), decryption_key=_b58(kind.decryption_key),
                embedding=_f32(kind.embedding),
            )
        if isinstance(kind, kinds.AddStakeToModel):
            return model_rules.add_stake(
                conn, ctx, state, p, gas, model_id=address_hex(kind.model_id), amount=kind.amount,
                coin=address_hex(kind.coin_ref.object_id),
            )
        if isinstance(kind, kinds.SetModelCommissionRate):
            return model_rules.set_commission_rate(conn, ctx, model_id=address_hex(kind.model_id), new_rate=kind.new_rate)
        if isinstance(kind, kinds.DeactivateModel):
            return model_rules.deactivate_model(conn, ctx, model_id=address_hex(kind.model_id))
        if isinstance(kind, kinds.WithdrawStake):
            return model_rules.withdraw_stake(conn, ctx, state, staked_id=address_hex(kind.staked_soma.object_id))
        if isinstance(kind, kinds.SubmitData):
            distance = _f32(kind.distance_score)
            if distance.size != 1:
                raise errors.InvalidArguments(detail=f"distance_score must be a scalar, got {distance.size} values")
            return submissions.submit_data(
                conn, ctx, state, p, gas, target_id=address_hex(kind.target_id), data_url=kind.data_manifest.url,
                data_checksum=_b58(kind.data_manifest.checksum), data_size=kind.data_manifest.size,
                model_id=address_hex(kind.model_id), embedding=_f32(kind.embedding),
                distance_score=float(distance[0]), loss_score=[float(x) for x in _f32(kind.loss_score)],
                bond_coin=address_hex(kind.bond_coin.object_id),
            )
        if isinstance(kind, kinds.ClaimRewards):
            return submissions.claim_rewards(conn, ctx, state, p, target_id=address_hex(kind.target_id))
        if isinstance(kind, kinds.PayCoins):
            return coin_rules.pay_coins(
                conn, ctx, state, p, gas, coins=[address_hex(c.object_id) for c in kind.coins],
                amounts=None if kind.amounts is None else list(kind.amounts),
                recipients=[address_hex(r) for r in kind.recipients],
            )
        if isinstance(kind, kinds.TransferCoin):
            return coin_rules.transfer_coin(
                conn, ctx, state, p, gas, coin_id=address_hex(kind.coin.object_id), amount=kind.amount,
                recipient=address_hex(kind.recipient),
            )
        raise errors.InvalidTransactionType(detail=type(kind).__name__)

    return body


def execute_signed(conn: sqlite3.Connection, tx: TransactionData, digest: bytes) -> Effects:
    """Execute a signature-checked transaction whose digest is `digest` (see the module text).

    Raises `TransactionRejected` (nothing written) or returns the effects, success or failure.
    """
    kind = tx.kind
    kind_name = type(kind).__name__
    if isinstance(kind, _UNSUPPORTED):
        raise TransactionRejected(
            "Unimplemented", f"the soma-ray localnet does not execute {kind_name} transactions (no validators)"
        )
    sender = address_hex(tx.sender)
    with immediate(conn):
        if conn.execute("SELECT 1 FROM txs WHERE digest = ?", (to_base58(digest),)).fetchone():
            raise TransactionRejected(
                "AlreadyExists", f"transaction {to_base58(digest)} was already executed; it is not executed again"
            )
        if not tx.gas_payment:
            raise TransactionRejected("InvalidArgument", "No gas payment provided")
        gas_ids = [address_hex(ref.object_id) for ref in tx.gas_payment]
        if len(set(gas_ids)) != len(gas_ids):
            raise TransactionRejected("InvalidArgument", "a gas coin is listed twice")
        owned = list(tx.gas_payment)
        named = owned_inputs(kind)
        if len({ref.object_id for ref in named}) != len(named):
            raise TransactionRejected("InvalidArgument", "an input object is listed twice")
        extra = [ref for ref in named if address_hex(ref.object_id) not in gas_ids]  # gas may double as input
        owned += extra
        for ref in tx.gas_payment:
            check_owned_input(conn, ref, sender)
        for ref in extra:
            check_owned_input(conn, ref, sender, input_types(kind))
        for ref in named:  # an input that is also a gas coin must name the same version
            if address_hex(ref.object_id) in gas_ids and ref not in tx.gas_payment:
                raise TransactionRejected(
                    "InvalidArgument", f"{address_hex(ref.object_id)} is named at two versions or digests"
                )
        target = target_input(kind)
        target_deleted = False
        if target is not None and load_object(conn, target) is None:
            if deleted_version(conn, target) is None:
                raise _not_found(target, None)
            target_deleted = True

        state = load_state(conn)
        params = ProtocolParams.from_dict(state["params"])
        ctx = begin_tx(conn, sender, kind_name, int(state["epoch"]), digest=digest)
        for ref in owned:
            ctx.snapshot(address_hex(ref.object_id))
        if isinstance(kind, _SYSTEM_KINDS):
            ctx.snapshot(SYSTEM_STATE_ID)
        if target is not None:
            ctx.snapshot(target)
        gas = coin_rules.smash_gas(conn, ctx, gas_ids)
        coin = get_coin(conn, gas)
        assert coin is not None
        failure: errors.TransactionFailed | None
        if coin.balance < params.base_fee:
            failure = gas_too_small(conn, ctx, state, coin)
        else:
            _, failure = run_body(conn, ctx, state, params, gas, body_of(kind, target_deleted=target_deleted))
        return effects_of(conn, ctx, kind=kind_name, epoch=int(state["epoch"]), gas=gas, failure=failure)
