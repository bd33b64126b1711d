"""`soma.rpc.TransactionExecutionService`: where signed transactions enter the served network.

Not executed yet. soma-sdk sends a transaction as protobuf fields (`transaction{digest, kind,
sender, gas_payment}`, `signatures`), not BCS (protocol.md §13.3); executing it needs the
transaction codec (`soma_ray.protocol.wire`): the messages of `ExecuteTransactionRequest` /
`ExecuteTransactionResponse`, decoding the kind into the SimChain call it maps to, recomputing
the digest, checking the Ed25519 signature over the intent message, and answering with effects.

The plug: a `TransactionExecutor` handed to `LocalnetServer(executor=...)` receives the raw
request bytes and returns the raw response bytes (or raises `ExecutionRejected` for a gRPC
error). Everything it writes to the sim is a finished row in its `txs` table, which is what the
checkpoint stream (SubscriptionService) delivers, so the client sees its transaction in a
checkpoint without anything else to wire up — provided the row's digest is the transaction's
real digest.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import grpc

SERVICE = "soma.rpc.TransactionExecutionService"
METHODS = ("ExecuteTransaction", "SimulateTransaction")
NOT_YET = (
    "the soma-ray localnet does not execute transactions sent over the wire yet (this needs the "
    "transaction codec); read calls, the faucet, advance_epoch and scoring work. Send transactions "
    "to the same network as `network: sim` with `chain.sim.path` set to the localnet's folder"
)

log = logging.getLogger("soma_ray.localnet")


class ExecutionRejected(Exception):
    """A transaction refused before execution: becomes a gRPC status with `code` and the message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class TransactionExecutor(Protocol):
    """Executes (or simulates) one request; bytes in and out are the protobuf messages."""

    async def execute(self, request: bytes) -> bytes: ...

    async def simulate(self, request: bytes) -> bytes: ...


def _identity(data: bytes) -> bytes:
    return data


def execution_handler(executor: TransactionExecutor | None) -> Any:
    """The generic gRPC handler of the service, raw bytes in and out."""

    def method(name: str) -> Any:
        async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            if executor is None:
                log.info("%s refused: not implemented yet", name)
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, NOT_YET)
            assert executor is not None
            try:
                call = executor.execute if name == "ExecuteTransaction" else executor.simulate
                return await call(request)
            except ExecutionRejected as err:
                await context.abort(err.code, str(err))
                raise  # unreachable: abort raises

        return grpc.unary_unary_rpc_method_handler(handle, request_deserializer=_identity, response_serializer=_identity)

    return grpc.method_handlers_generic_handler(SERVICE, {name: method(name) for name in METHODS})
