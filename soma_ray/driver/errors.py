"""Driver refusals a user can act on (one line each)."""

from soma_ray.chain.errors import ChainError


class DriverRefused(ChainError):
    """The driver would not send an action: unsafe network, funds, spend cap, bad artifacts."""
