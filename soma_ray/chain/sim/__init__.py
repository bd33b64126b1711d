"""The embedded, protocol-faithful simulated SOMA network (SQLite-backed).

`SimChain` loads lazily: a recipe's `chain.sim` settings import without the simulator itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from soma_ray.chain.sim.settings import SimSettings

if TYPE_CHECKING:
    from soma_ray.chain.sim.network import SimChain

__all__ = ["SimChain", "SimSettings"]


def __getattr__(name: str) -> Any:
    if name == "SimChain":
        from soma_ray.chain.sim.network import SimChain

        return SimChain
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
