"""The bond a data submission locks until its target is claimed (protocol.md §4.2)."""

from __future__ import annotations

from soma_ray.protocol.constants import ProtocolParams


def submission_bond(data_size: int, params: ProtocolParams) -> int:
    """`data_size · submission_bond_per_byte` shannons (65 per byte in v5; 5,000 B → 325,000)."""
    return data_size * params.submission_bond_per_byte


def data_size_allowed(data_size: int, params: ProtocolParams) -> bool:
    """Whether the chain accepts data of this size (`max_submission_data_size`, 1 MiB in v5)."""
    return data_size <= params.max_submission_data_size
