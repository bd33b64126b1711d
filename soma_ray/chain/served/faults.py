"""Seeded faults at the served network's transaction door, for fault tests of the chain path.

A real fullnode is reached over a network that loses answers and resets connections, and it
refuses coins that another transaction holds. `FaultSettings` (`chain.localnet.faults`) makes the
served network do the same to `ExecuteTransaction`, reproducibly (one `random.Random(seed)` draws
every decision, in request order):

- `reset_before`: the connection drops before the transaction is executed (nothing changes);
- `drop_after`: the transaction is executed, then its answer is lost (the client cannot tell);
- `delay_s`: every answer waits this long first (with `delay_probability`);
- `lock_conflict`: the gas coin is reported locked by another transaction, in the node's words,
  so soma-sdk's own retry (protocol.md §13.3) runs.

`max_faults` bounds how many faults are injected in all (none: unbounded). Each injected fault is
one log line. All knobs default to off.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from soma_ray.chain.served.config import FaultSettings

EXECUTE_METHOD = "/soma.rpc.TransactionExecutionService/ExecuteTransaction"
# The text a fullnode answers for a coin held by another transaction; soma-sdk retries on it.
LOCK_CONFLICT = "ObjectLockConflict: an input object is already locked by another transaction (injected fault)"

log = logging.getLogger("soma_ray.localnet")


class FaultInjector(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps the ExecuteTransaction handler of the RPC server with the knobs' decisions."""

    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self.random = random.Random(settings.seed)
        self.injected = 0

    def _draw(self, probability: float) -> bool:
        """One seeded decision (drawn even at probability 0, so a knob's schedule does not
        depend on the other knobs' settings)."""
        hit = self.random.random() < probability
        limit = self.settings.max_faults
        if hit and (limit is None or self.injected < limit):
            self.injected += 1
            return True
        return False

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        handler = await continuation(details)
        if handler is None or details.method != EXECUTE_METHOD or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        s = self.settings

        async def faulty(request: Any, context: grpc.aio.ServicerContext) -> Any:
            reset, conflict = self._draw(s.reset_before), self._draw(s.lock_conflict)
            drop, delay = self._draw(s.drop_after), self.random.random() < s.delay_probability
            if reset:
                log.warning("fault: connection reset before executing")
                await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset by peer (injected fault)")
            if conflict:
                log.warning("fault: gas coin reported locked")
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, LOCK_CONFLICT)
            if delay and s.delay_s:
                await asyncio.sleep(s.delay_s)
            response = await inner(request, context)
            if drop:
                log.warning("fault: executed, answer dropped")
                await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset by peer (injected fault)")
            return response

        return grpc.unary_unary_rpc_method_handler(
            faulty,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
