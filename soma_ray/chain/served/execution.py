"""`soma.rpc.TransactionExecutionService`: where signed transactions enter the served network.

soma-sdk sends a transaction as protobuf fields plus its signatures (protocol.md §13.3). For each
`ExecuteTransaction`, `SignedTransactionExecutor`:

1. rebuilds `TransactionData` from the fields (`transactions.transaction_from_proto`), computes
   its digest and checks it equals the `digest` the client sent;
2. verifies the Ed25519 signature over the intent message against the sender
   (`protocol.wire.signatures.verify_transaction`);
3. executes it on the simulated network (`SimChain.execute_signed`: input versions and digests,
   the sim's rules, fees, Lamport versions);
4. answers with the effects: status (success, or the failure's kind), epoch, the four fee fields,
   the digest, the Lamport version, every changed object with its input and output version,
   digest and owner, and the balance changes when the read mask asks for them.

A malformed request, a digest mismatch or a bad signature is a gRPC InvalidArgument; an input at a
stale version answers the node's own text (`… is not available for consumption …`) so that the
SDK's retry logic runs; an unknown input object NotFound; a transaction already executed
AlreadyExists. None of these changes anything. The executed transaction is a finished row of the
sim's `txs` table under its real digest, so the checkpoint stream (SubscriptionService) delivers
it — the client waits for exactly that. One log line per transaction.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

import grpc

from soma_ray.chain.served.messages import rpc, service_name
from soma_ray.chain.served.transactions import BadTransaction, signatures_from_proto, transaction_from_proto
from soma_ray.chain.served.views import Mask, owner_message
from soma_ray.chain.sim.execute import Effects, ObjectChange, TransactionRejected
from soma_ray.chain.sim.objects import TYPE_NAMES
from soma_ray.protocol.wire.digests import to_base58, transaction_digest
from soma_ray.protocol.wire.signatures import SignatureError, verify_transaction
from soma_ray.protocol.wire.transaction import TransactionData

SERVICE = "TransactionExecutionService"
EXECUTE_MASK_DEFAULT = ("effects",)  # EXECUTE_TRANSACTION_READ_MASK_DEFAULT
SIMULATE_UNSUPPORTED = "the soma-ray localnet does not simulate transactions; execute them instead"

log = logging.getLogger("soma_ray.localnet")

_STATUS = {
    "InvalidArgument": grpc.StatusCode.INVALID_ARGUMENT,
    "NotFound": grpc.StatusCode.NOT_FOUND,
    "AlreadyExists": grpc.StatusCode.ALREADY_EXISTS,
    "Unimplemented": grpc.StatusCode.UNIMPLEMENTED,
}


class ExecutionRejected(Exception):
    """A transaction refused before execution: becomes a gRPC status with `code` and the message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class SignedTransactionSink(Protocol):
    """What executes a checked transaction (`SimChain`)."""

    async def execute_signed(self, tx: TransactionData, digest: bytes) -> Effects: ...


class TransactionExecutor(Protocol):
    """Answers one ExecuteTransaction request (protobuf messages in and out)."""

    async def execute(self, request: Any) -> Any: ...


class SignedTransactionExecutor:
    """Checks and executes what soma-sdk sends, on the served simulated network."""

    def __init__(self, sim: SignedTransactionSink) -> None:
        self.sim = sim

    async def execute(self, request: Any) -> Any:
        if not request.HasField("transaction"):
            raise _refused(grpc.StatusCode.INVALID_ARGUMENT, "missing transaction", "?")
        message = request.transaction
        try:
            tx = transaction_from_proto(message)
        except BadTransaction as err:
            raise _refused(grpc.StatusCode.INVALID_ARGUMENT, str(err), "a malformed transaction") from None
        tx_bcs = tx.encode()
        digest = transaction_digest(tx_bcs)
        ours = to_base58(digest)
        what = f"{type(tx.kind).__name__} from 0x{tx.sender.hex()} ({ours})"
        if not message.HasField("digest"):
            raise _refused(grpc.StatusCode.INVALID_ARGUMENT, "missing transaction.digest", what)
        if message.digest != ours:
            raise _refused(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"transaction digest {message.digest} does not match the transaction sent (its digest is {ours})", what,
            )
        try:
            verify_transaction(tx_bcs, signatures_from_proto(request.signatures))
        except SignatureError as err:
            raise _refused(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid user signature: {err}", what) from None
        try:
            effects = await self.sim.execute_signed(tx, digest)
        except TransactionRejected as err:
            raise _refused(_STATUS.get(err.reason, grpc.StatusCode.INVALID_ARGUMENT), str(err), what) from None
        outcome = "ok" if effects.ok else f"failed: {effects.error}" + (f" ({effects.error_detail})" if effects.error_detail else "")
        log.info("tx %s: %s, fee %d", what, outcome, effects.fee.total)
        mask = Mask.of(request, "read_mask", EXECUTE_MASK_DEFAULT)
        return rpc().ExecuteTransactionResponse(transaction=executed_transaction(request, effects, mask))


def _refused(code: grpc.StatusCode, message: str, what: str) -> ExecutionRejected:
    log.info("tx %s: refused: %s", what, message)
    return ExecutionRejected(code, message)


# -- the response ------------------------------------------------------------------------------


def executed_transaction(request: Any, effects: Effects, mask: Mask) -> Any:
    m = rpc()
    executed = m.ExecutedTransaction()
    if mask.wants("digest"):
        executed.digest = effects.digest_b58
    if mask.wants("transaction"):
        executed.transaction.CopyFrom(request.transaction)
    if mask.wants("signatures"):
        executed.signatures.extend(request.signatures)
    if mask.wants("effects"):
        executed.effects.CopyFrom(effects_message(effects, mask.sub("effects")))
    if mask.wants("balance_changes"):
        executed.balance_changes.extend(
            m.BalanceChange(address=address, amount=str(amount)) for address, amount in effects.balance_changes
        )
    return executed


def effects_message(effects: Effects, mask: Mask) -> Any:
    m = rpc()
    message = m.TransactionEffects()
    if mask.wants("status"):
        message.status.CopyFrom(status_message(effects))
    if mask.wants("epoch"):
        message.epoch = effects.epoch
    if mask.wants("fee"):
        fee = effects.fee
        message.fee.CopyFrom(
            m.TransactionFee(base_fee=fee.base, operation_fee=fee.operation, value_fee=fee.value, total_fee=fee.total)
        )
    if mask.wants("transaction_digest"):
        message.transaction_digest = effects.digest_b58
    if mask.wants("lamport_version"):
        message.lamport_version = effects.lamport
    changes = [changed_object(c) for c in effects.changes]
    if mask.wants("gas_object_index") and effects.gas_object is not None:
        for index, change in enumerate(effects.changes):
            if change.object_id == effects.gas_object:
                message.gas_object_index = index
    if mask.wants("dependencies"):
        message.dependencies.extend(to_base58(d) for d in effects.dependencies)
    if mask.wants("changed_objects"):
        message.changed_objects.extend(changes)
    return message


def changed_object(change: ObjectChange) -> Any:
    m = rpc()
    message = m.ChangedObject(object_id=change.object_id, object_type=TYPE_NAMES[change.object_type])
    if change.input is None:
        message.input_state = m.ChangedObject.INPUT_OBJECT_STATE_DOES_NOT_EXIST
    else:
        message.input_state = m.ChangedObject.INPUT_OBJECT_STATE_EXISTS
        message.input_version = change.input.version
        message.input_digest = to_base58(change.input.digest)
        message.input_owner.CopyFrom(owner_message(change.input.owner))
    if change.output is None:
        message.output_state = m.ChangedObject.OUTPUT_OBJECT_STATE_DOES_NOT_EXIST
    else:
        message.output_state = m.ChangedObject.OUTPUT_OBJECT_STATE_OBJECT_WRITE
        message.output_version = change.output.version
        message.output_digest = to_base58(change.output.digest)
        message.output_owner.CopyFrom(owner_message(change.output.owner))
    message.id_operation = {
        "created": m.ChangedObject.CREATED, "deleted": m.ChangedObject.DELETED, "none": m.ChangedObject.NONE,
    }[change.id_operation]
    return message


# -- failures ----------------------------------------------------------------------------------

# The sim's failure names whose ExecutionErrorKind is named differently, and those the node reports
# as OTHER_ERROR with a fixed text (rpc/src/utils/types_conversions.rs).
_KIND_ALIASES = {
    "AuditWindowOpen": "CHALLENGE_WINDOW_OPEN",
    "AuditWindowClosed": "CHALLENGE_WINDOW_CLOSED",
    "ModelNotCreated": "MODEL_NOT_FOUND",
}
_OTHER_TEXTS = {
    "ModelInvalidState": "Model in invalid state for this operation",
    "ArithmeticOverflow": "Arithmetic overflow in execution",
}
# Kinds whose details the client parses from `other_error` as "k=v, k=v".
_STRUCTURED = {
    "TARGET_EXPIRED", "CHALLENGE_WINDOW_OPEN", "CHALLENGE_WINDOW_CLOSED", "MODEL_NOT_IN_TARGET",
    "EMBEDDING_DIMENSION_MISMATCH", "DISTANCE_EXCEEDS_THRESHOLD", "INSUFFICIENT_BOND", "DATA_EXCEEDS_MAX_SIZE",
}
_OBJECT_ID_KINDS = {"INVALID_OWNERSHIP", "OBJECT_NOT_FOUND", "INVALID_OBJECT_TYPE"}
_PAIR = re.compile(r"(\w+): (0x[0-9a-fA-F]+|[-+0-9.eE]+|inf|nan|NaN)")
_OBJECT_ID = re.compile(r"0x[0-9a-fA-F]{1,64}")


def _enum_name(name: str) -> str:
    return _KIND_ALIASES.get(name) or re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def status_message(effects: Effects) -> Any:
    """`ExecutionStatus`: success, or the failure's kind with the details the client parses."""
    m = rpc()
    if effects.ok:
        return m.ExecutionStatus(success=True)
    name = effects.error or "OtherError"
    detail = effects.error_detail or ""
    kinds = m.ExecutionError.ExecutionErrorKind
    error = m.ExecutionError()
    enum_name = _enum_name(name)
    if name in _OTHER_TEXTS or enum_name not in kinds.DESCRIPTOR.values_by_name:
        error.kind = kinds.Value("OTHER_ERROR")
        error.other_error = _OTHER_TEXTS.get(name) or f"{name}{f': {detail}' if detail else ''}"
        error.description = error.other_error
        return m.ExecutionStatus(success=False, error=error)
    error.kind = kinds.Value(enum_name)
    pairs = _PAIR.findall(detail)
    if enum_name in _STRUCTURED and pairs:
        error.other_error = ", ".join(f"{k}={v}" for k, v in pairs)
        error.description = f"{name} {{ {', '.join(f'{k}: {v}' for k, v in pairs)} }}"
    elif enum_name in _OBJECT_ID_KINDS:
        found = _OBJECT_ID.search(detail)
        if found:
            error.object_id = found.group(0)
        error.description = f"{name}{f' ({detail})' if detail else ''}"
    elif enum_name == "INVALID_ARGUMENTS":
        error.other_error = detail or "Invalid arguments"
        error.description = f"InvalidArguments {{ reason: {detail!r} }}"
    else:
        error.description = f"{name}{f' ({detail})' if detail else ''}"
    return m.ExecutionStatus(success=False, error=error)


# -- the gRPC service --------------------------------------------------------------------------


def execution_handler(executor: TransactionExecutor) -> Any:
    """The typed gRPC handler of the service."""
    m = rpc()

    async def execute(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await executor.execute(request)
        except ExecutionRejected as err:
            await context.abort(err.code, str(err))
        except grpc.aio.AbortError:
            raise
        except Exception as err:  # a bug or a broken network file: one line to the client, the trace to the log
            log.exception("ExecuteTransaction failed")
            await context.abort(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")

    async def simulate(request: Any, context: grpc.aio.ServicerContext) -> Any:
        log.info("SimulateTransaction refused: not supported")
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, SIMULATE_UNSUPPORTED)

    def serialize(message: Any) -> bytes:
        return bytes(message.SerializeToString())

    return grpc.method_handlers_generic_handler(service_name(SERVICE), {
        "ExecuteTransaction": grpc.unary_unary_rpc_method_handler(
            execute, request_deserializer=m.ExecuteTransactionRequest.FromString, response_serializer=serialize,
        ),
        "SimulateTransaction": grpc.unary_unary_rpc_method_handler(
            simulate, request_deserializer=m.SimulateTransactionRequest.FromString, response_serializer=serialize,
        ),
    })
