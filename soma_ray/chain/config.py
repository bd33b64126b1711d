"""The `chain:` and `wallet:` sections of a recipe: which network, and the key that signs on it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from soma_ray.chain.served.config import LocalnetSettings
from soma_ray.chain.sim.settings import SimSettings
from soma_ray.paths import http_url

NAMED_NETWORKS = ("sim", "testnet", "localnet")


class ChainConfig(BaseModel):
    """Which SOMA network to use: the embedded simulation (default), testnet, localnet or a URL."""

    model_config = ConfigDict(extra="forbid")

    network: str = "sim"
    rpc_url: str | None = None
    faucet_url: str | None = None
    admin_url: str | None = None
    scoring_url: str | None = None
    sim: SimSettings = Field(default_factory=SimSettings)
    localnet: LocalnetSettings = Field(
        default_factory=LocalnetSettings,
        description="the embedded network `soma-ray localnet` serves on the localnet ports",
    )

    @field_validator("network")
    @classmethod
    def _known_network(cls, value: str) -> str:
        if value in NAMED_NETWORKS:
            return value
        if value.startswith(("http://", "https://")):
            return http_url(value)
        raise ValueError(f"must be one of {', '.join(NAMED_NETWORKS)} or an http(s):// RPC URL")

    @field_validator("rpc_url", "faucet_url", "admin_url", "scoring_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return value if not value else http_url(value)  # empty: not set (`${VAR:-}`)


class WalletConfig(BaseModel):
    """The signing key: `secret_key` (from ${SOMA_SECRET_KEY}) wins over `key_file`."""

    model_config = ConfigDict(extra="forbid")

    key_file: Path = Path(".soma-ray/wallet.key")
    secret_key: SecretStr | None = None
