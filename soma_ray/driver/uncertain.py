"""Which send failures leave the outcome unknown, and the driver's fault counters.

Only an answer from the chain is certain: a `TransactionFailed` executed, failed and charged the
base fee. Everything else a send can raise leaves the outcome open: the connection reset before or
after the transaction executed, the answer was lost or late, the client gave up on a lock conflict
(nothing executed), the node refused the transaction as built (nothing executed) or answered that
the same transaction already executed (it did). Reading the chain costs less than being wrong, so
the driver settles all of them from chain state.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass

from soma_ray.chain.errors import ChainError, TransactionFailed


def is_uncertain(err: BaseException) -> bool:
    """True when `err`, raised by a send, does not tell whether the transaction executed."""
    if isinstance(err, TransactionFailed):
        return False
    return isinstance(err, (ChainError, TimeoutError, asyncio.TimeoutError))


@dataclass
class SendCounts:
    """What the driver saw since it started (not persistent: a restarted driver counts afresh)."""

    uncertain: int = 0  # sends whose outcome was unknown
    reconciled: int = 0  # actions settled from what the chain holds
    landed: int = 0  # ... of which had executed (answer lost)
    retried: int = 0  # sends repeated after the chain showed they had not landed

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


__all__ = ["SendCounts", "is_uncertain"]
