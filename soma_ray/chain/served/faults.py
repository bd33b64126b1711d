"""Seeded faults at the served network's transaction door, for fault tests of the chain path.

A real fullnode is reached over a network that loses answers and resets connections, and it
refuses coins that another transaction holds. `FaultSettings` (`chain.localnet.faults`) makes the
served network do the same to `ExecuteTransaction`, reproducibly (one `random.Random(seed)` draws
every decision, in request order):

- `reset_before`: the connection drops before the transaction is executed (nothing changes);
- `drop_after`: the transaction is executed, then its answer is lost (the client cannot tell);
- `delay_s`: every answer waits this long first (with `delay_probability`);
- `lock_conflict`: the gas coin is reported locked by another transaction, in the node's words,
  so soma-sdk's own retry (protocol.md §13.3) runs;
- `epoch_change`: the epoch ends while the transaction is in flight, as the real network's clock
  ends one whenever it is due: before the transaction executes (it runs in the new epoch, though
  its sender read the old one) or after it executed, before the answer (its sender then reads the
  new epoch). An epoch lasts at least `epoch_min_txs` transactions (counted from the last epoch
  change, the admin's included), as a real one lasts hours, not milliseconds.

`max_faults` bounds how many faults are injected in all (none: unbounded). Each injected fault is
one log line and is counted by kind (`counts`). All knobs default to off; `arm` sets new knobs on
a running network (fault tests aim one fault at one action).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from soma_ray.chain.served.config import FaultSettings

EXECUTE_METHOD = "/soma.rpc.TransactionExecutionService/ExecuteTransaction"
# The text a fullnode answers for a coin held by another transaction; soma-sdk retries on it.
LOCK_CONFLICT = "ObjectLockConflict: an input object is already locked by another transaction (injected fault)"
RESET = "connection reset by peer (injected fault)"
FAULT_KINDS = ("reset_before", "lock_conflict", "drop_after", "delay", "epoch_change_before", "epoch_change_after")

log = logging.getLogger("soma_ray.localnet")

EpochAdvance = Callable[[], Awaitable[int]]


class FaultInjector(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps the ExecuteTransaction handler of the RPC server with the knobs' decisions."""

    def __init__(self, settings: FaultSettings, advance_epoch: EpochAdvance | None = None) -> None:
        self.advance_epoch = advance_epoch
        self.counts: Counter[str] = Counter()
        self.arm(settings)

    def arm(self, settings: FaultSettings) -> None:
        """New knobs (and a fresh seeded schedule and fault budget) from the next request on."""
        self.settings = settings
        self.random = random.Random(settings.seed)
        self.injected = 0
        self.since_epoch_change = 0

    def epoch_changed(self) -> None:
        """The epoch changed outside the injector (the admin's advance_epoch)."""
        self.since_epoch_change = 0

    def _draw(self, probability: float) -> bool:
        """One seeded decision (drawn even at probability 0, so a knob's schedule does not
        depend on the other knobs' settings)."""
        hit = self.random.random() < probability
        limit = self.settings.max_faults
        if hit and (limit is None or self.injected < limit):
            self.injected += 1
            return True
        return False

    def _fault(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        log.warning("fault: %s", message)

    async def _change_epoch(self, when: str) -> None:
        assert self.advance_epoch is not None
        epoch = await self.advance_epoch()
        self.since_epoch_change = 0
        self._fault(f"epoch_change_{when}", f"epoch changed to {epoch} {when} executing")

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        handler = await continuation(details)
        if handler is None or details.method != EXECUTE_METHOD or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def faulty(request: Any, context: grpc.aio.ServicerContext) -> Any:
            s = self.settings
            if not s.enabled:
                return await inner(request, context)
            reset, conflict = self._draw(s.reset_before), self._draw(s.lock_conflict)
            drop, delay = self._draw(s.drop_after), self.random.random() < s.delay_probability
            change = self.random.random() < s.epoch_change
            before = self.random.random() < 0.5
            self.since_epoch_change += 1
            change = (change and self.advance_epoch is not None and self.since_epoch_change > s.epoch_min_txs
                      and (s.max_faults is None or self.injected < s.max_faults))
            if change:
                self.injected += 1
            if reset:
                self._fault("reset_before", "connection reset before executing")
                await context.abort(grpc.StatusCode.UNAVAILABLE, RESET)
            if conflict:
                self._fault("lock_conflict", "gas coin reported locked")
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, LOCK_CONFLICT)
            if delay and s.delay_s:
                self.counts["delay"] += 1
                await asyncio.sleep(s.delay_s)
            if change and before:
                await self._change_epoch("before")
            response = await inner(request, context)
            if change and not before:
                await self._change_epoch("after")
            if drop:
                self._fault("drop_after", "executed, answer dropped")
                await context.abort(grpc.StatusCode.UNAVAILABLE, RESET)
            return response

        return grpc.unary_unary_rpc_method_handler(
            faulty,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
