"""The fullnode gRPC services (protobuf): LedgerService, StateService, SubscriptionService.

Each handler reads the simulated network's SQLite file in a worker thread (`views`), so any
process that changes the network (the CLI, a driver actor, the faucet here) is seen at once.
Bad requests answer InvalidArgument, unknown ids NotFound, anything else Internal with one line.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc

from soma_ray.chain.served import views
from soma_ray.chain.served.config import SERVER_VERSION
from soma_ray.chain.served.messages import rpc, service_name
from soma_ray.chain.sim.store import connect, load_state

T = TypeVar("T")
log = logging.getLogger("soma_ray.localnet")

CHECKPOINT_POLL_S = 0.05  # how often a checkpoint subscription looks for new transactions


class Fullnode:
    """The read side of the RPC over one network file."""

    def __init__(self, db_path: Path, *, chain: str) -> None:
        self.db_path = db_path
        self.chain = chain

    def _read_sync(self, fn: Callable[[sqlite3.Connection, dict[str, Any]], T]) -> T:
        conn = connect(self.db_path)
        try:
            return fn(conn, load_state(conn))
        finally:
            conn.close()

    async def read(self, fn: Callable[[sqlite3.Connection, dict[str, Any]], T]) -> T:
        return await asyncio.to_thread(self._read_sync, fn)

    # -- LedgerService -------------------------------------------------------------------------

    async def get_service_info(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self.read(lambda c, s: views.service_info(c, s, chain=self.chain, server=SERVER_VERSION))

    async def get_object(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if not request.object_id:
            raise views.BadRequest("missing object_id")
        mask = views.Mask.of(request, "read_mask", ("object_id", "version", "digest"))
        obj = await self.read(lambda c, s: views.get_object(c, request.object_id))
        if request.HasField("version") and request.version != obj.version:
            raise views.NotFound(
                f"object {request.object_id} at version {request.version} not found (only the latest is kept)"
            )
        return rpc().GetObjectResponse(object=views.object_message(obj, mask))

    async def get_epoch(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        mask = views.Mask.of(request, "read_mask", views.EPOCH_MASK_DEFAULT)
        epoch = request.epoch if request.HasField("epoch") else None
        message = await self.read(lambda c, s: views.epoch_message(c, s, epoch, mask))
        return rpc().GetEpochResponse(epoch=message)

    # -- StateService --------------------------------------------------------------------------

    async def get_balance(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if not request.owner:
            raise views.BadRequest("missing owner")
        return rpc().GetBalanceResponse(balance=await self.read(lambda c, s: views.balance(c, request.owner)))

    async def list_owned_objects(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if not request.owner:
            raise views.BadRequest("missing owner")
        mask = views.Mask.of(request, "read_mask", views.OBJECT_MASK_DEFAULT)
        objects, token = await self.read(
            lambda c, s: views.owned_objects(
                c,
                request.owner,
                request.object_type if request.HasField("object_type") else None,
                request.page_size if request.HasField("page_size") else None,
                request.page_token if request.HasField("page_token") else None,
            )
        )
        response = rpc().ListOwnedObjectsResponse(objects=[views.object_message(o, mask) for o in objects])
        if token is not None:
            response.next_page_token = token
        return response

    async def list_targets(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        mask = views.Mask.of(request, "read_mask", views.TARGET_MASK_DEFAULT)
        targets, token = await self.read(
            lambda c, s: views.list_targets(
                c,
                s,
                status=request.status_filter if request.HasField("status_filter") else None,
                epoch=request.epoch_filter if request.HasField("epoch_filter") else None,
                submitter=request.submitter_filter if request.HasField("submitter_filter") else None,
                page_size=request.page_size if request.HasField("page_size") else None,
                page_token=request.page_token if request.HasField("page_token") else None,
                mask=mask,
            )
        )
        response = rpc().ListTargetsResponse(targets=targets)
        if token is not None:
            response.next_page_token = token
        return response

    # -- SubscriptionService -------------------------------------------------------------------

    async def subscribe_checkpoints(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """Every checkpoint (= finished transaction) after the moment of subscribing.

        The response headers go out at once: soma-sdk opens this stream and waits for it before it
        sends the transaction whose checkpoint it then waits for (§13.3).
        """
        # The cursor is taken before the headers go out: a transaction the client sends once it
        # has them is then always after the cursor.
        cursor = await self.read(lambda c, s: views.latest_checkpoint(c))
        await context.send_initial_metadata(())
        m = rpc()
        while True:
            news = await self.read(functools.partial(_checkpoints_after, after=cursor))
            for tx in news:
                cursor = tx.seq
                checkpoint = m.Checkpoint(
                    sequence_number=tx.seq, transactions=[m.ExecutedTransaction(digest=tx.digest, checkpoint=tx.seq)]
                )
                yield m.SubscribeCheckpointsResponse(cursor=tx.seq, checkpoint=checkpoint)
            if not news:
                await asyncio.sleep(CHECKPOINT_POLL_S)

    # -- wiring --------------------------------------------------------------------------------

    def handlers(self) -> list[Any]:
        m = rpc()

        def unary(fn: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]], request: str) -> Any:
            return grpc.unary_unary_rpc_method_handler(
                _guarded(fn), request_deserializer=getattr(m, request).FromString,
                response_serializer=_serialize,
            )

        ledger = {
            "GetServiceInfo": unary(self.get_service_info, "GetServiceInfoRequest"),
            "GetObject": unary(self.get_object, "GetObjectRequest"),
            "GetEpoch": unary(self.get_epoch, "GetEpochRequest"),
        }
        state = {
            "GetBalance": unary(self.get_balance, "GetBalanceRequest"),
            "ListOwnedObjects": unary(self.list_owned_objects, "ListOwnedObjectsRequest"),
            "ListTargets": unary(self.list_targets, "ListTargetsRequest"),
        }
        subscription = {
            "SubscribeCheckpoints": grpc.unary_stream_rpc_method_handler(
                self.subscribe_checkpoints, request_deserializer=m.SubscribeCheckpointsRequest.FromString,
                response_serializer=_serialize,
            )
        }
        return [
            grpc.method_handlers_generic_handler(service_name("LedgerService"), ledger),
            grpc.method_handlers_generic_handler(service_name("StateService"), state),
            grpc.method_handlers_generic_handler(service_name("SubscriptionService"), subscription),
        ]


def _checkpoints_after(conn: sqlite3.Connection, state: dict[str, Any], *, after: int) -> list[views.CheckpointTx]:
    return views.checkpoints_after(conn, after)


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


def _guarded(
    fn: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """Turns the views' exceptions into gRPC statuses."""

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(request, context)
        except views.BadRequest as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        except views.NotFound as err:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(err))
        except grpc.aio.AbortError:
            raise
        except Exception as err:  # a bug or a broken network file: one line to the client, the trace to the log
            log.exception("%s failed", getattr(fn, "__name__", "request"))
            await context.abort(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")

    return call
