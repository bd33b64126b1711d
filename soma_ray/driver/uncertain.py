"""Which send failures leave the outcome unknown, and the driver's fault counters.

A transaction whose answer never came (the connection reset before or after it executed, the
answer was lost, it timed out) may or may not have executed; a lock conflict the client gave up on
did not, but is settled the same way (reading the chain costs less than being wrong). A failure the
chain answered (`TransactionFailed`) is certain: it executed, failed, and charged the base fee.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass

from soma_ray.chain.errors import ChainError, ChainUnavailable, TransactionFailed

# The node's texts for inputs another transaction holds (protocol.md §13.3): soma-sdk retries them
# itself and raises when its retries run out. And a transaction whose digest already executed (the
# same transaction sent twice, e.g. two identical merges): it landed, the answer went elsewhere.
_CONFLICT_MARKERS = ("objectlockconflict", "already locked", "not available for consumption", "already executed",
                     "alreadyexists")


def is_uncertain(err: BaseException) -> bool:
    """True when `err` does not tell whether the transaction executed."""
    if isinstance(err, TransactionFailed):
        return False
    if isinstance(err, (ChainUnavailable, TimeoutError, asyncio.TimeoutError)):
        return True
    return isinstance(err, ChainError) and any(m in str(err).lower() for m in _CONFLICT_MARKERS)


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
