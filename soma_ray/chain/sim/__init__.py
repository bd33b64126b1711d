"""The embedded, protocol-faithful simulated SOMA network (SQLite-backed)."""

from soma_ray.chain.sim.network import SimChain
from soma_ray.chain.sim.settings import ArchitectureSettings, SimSettings

__all__ = ["ArchitectureSettings", "SimChain", "SimSettings"]
