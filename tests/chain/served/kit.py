"""Helpers of the served-network tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soma_ray.chain.sdk import shannons_from_soma
from soma_ray.chain.served import LocalnetSettings
from soma_ray.protocol.commitments import canonical_address

FREE_PORTS = {"rpc_port": 0, "faucet_port": 0, "scoring_port": 0, "admin_port": 0, "blob_port": 0}


def served_settings(root: Path, faults: dict[str, Any] | None = None, **sim: Any) -> LocalnetSettings:
    """Every service on a free port (never the fixed localnet ports), a tiny network like
    tests/conftest.py's small_sim_settings."""
    genesis: dict[str, Any] = {
        "path": str(root / "localnet"),
        "genesis_models": 4,
        "genesis_targets": 10,
        "params": {"target_initial_targets_per_epoch": 10},
    }
    genesis.update(sim)
    return LocalnetSettings.model_validate({**FREE_PORTS, "sim": genesis, "faults": faults or {}})


def shannons(soma: float) -> int:
    """The exact shannons behind a SOMA float from the SDK."""
    return shannons_from_soma(float(soma))


def addr(text: str) -> str:
    return canonical_address(text)
