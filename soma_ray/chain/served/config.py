"""The `chain.localnet:` section: the embedded network served behind SOMA's wire protocol.

`soma-ray localnet` serves the simulated network described by `sim` (its genesis, like
`chain.sim`) on the ports of `soma start localnet`, so the official soma-sdk client
(`SomaClient(chain="localnet")`), our `SdkChain` (`network: localnet`) and the quickstart
scripts run against it unchanged. The network's own blobs (genesis weights) are published on
`blob_port`; 9200 stays free for a participant's own uploads, as the quickstart expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from soma_ray.chain.sim.settings import SimSettings

# What `GetServiceInfo.server` reports: soma-sdk 0.1.15 is built from the soma workspace at version
# 0.1.19, and its `check_api_version` compares the text after the last "/" with that (§13).
SERVER_VERSION = "soma-ray-localnet/0.1.19"
DEFAULT_PATH = Path(".soma-ray/localnet")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


class FaultSettings(BaseModel):
    """Seeded fault knobs for `ExecuteTransaction` (probabilities per request)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    reset_before: float = Field(default=0.0, ge=0, le=1, description="drop the connection before executing")
    drop_after: float = Field(default=0.0, ge=0, le=1, description="execute, then lose the answer")
    lock_conflict: float = Field(default=0.0, ge=0, le=1, description="answer that the gas coin is locked")
    delay_s: float = Field(default=0.0, ge=0, description="hold the answer this long")
    delay_probability: float = Field(default=1.0, ge=0, le=1, description="how often `delay_s` applies")
    epoch_change: float = Field(
        default=0.0, ge=0, le=1, description="the epoch changes while the transaction is in flight"
    )
    epoch_min_txs: int = Field(
        default=0, ge=0, description="transactions an epoch lasts at least before `epoch_change` may end it"
    )
    max_faults: int | None = Field(default=None, ge=0, description="stop injecting after this many faults")

    @property
    def enabled(self) -> bool:
        return bool(self.reset_before or self.drop_after or self.lock_conflict or self.delay_s or self.epoch_change)


class LocalnetSettings(BaseModel):
    """Where the served network listens (127.0.0.1 only, unless `host` says otherwise)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="interface every service binds; keep loopback")
    rpc_port: int = Field(default=9000, ge=0, le=65535, description="fullnode gRPC (protobuf)")
    faucet_port: int = Field(default=9123, ge=0, le=65535, description="faucet gRPC (BCS)")
    scoring_port: int = Field(default=9124, ge=0, le=65535, description="scoring gRPC (BCS)")
    admin_port: int = Field(default=9125, ge=0, le=65535, description="admin gRPC (BCS): advance_epoch")
    blob_port: int = Field(
        default=9126, ge=0, le=65535, description="HTTP server of the network's blobs (model weights, data)"
    )
    chain_name: str = Field(default="localnet", description="what GetServiceInfo calls the chain")
    sim: SimSettings = Field(
        default_factory=lambda: SimSettings(path=DEFAULT_PATH),
        description="genesis of the served network (as chain.sim); its blob_url follows blob_port",
    )
    scoring_cache_dir: Path | None = Field(
        default=None, description="the scoring service's weights cache (default: <sim.path>/scoring-cache)"
    )
    scoring_max_resident: int = Field(default=3, ge=1, description="models the scoring service keeps loaded")
    faults: FaultSettings = Field(
        default_factory=FaultSettings, description="seeded faults at ExecuteTransaction, for fault tests (off)"
    )

    @model_validator(mode="before")
    @classmethod
    def _own_folder(cls, raw: Any) -> Any:
        """A `sim:` section given without a path still lives in the localnet's own folder (not
        `.soma-ray/sim`, the default embedded network's)."""
        if isinstance(raw, dict) and isinstance(raw.get("sim"), dict) and "path" not in raw["sim"]:
            raw = {**raw, "sim": {**raw["sim"], "path": DEFAULT_PATH}}
        return raw

    @model_validator(mode="after")
    def _blobs_follow_the_port(self) -> LocalnetSettings:
        if "blob_url" in self.sim.model_fields_set:
            raise ValueError("sim.blob_url is set by the served network (http://<host>:<blob_port>); set blob_port instead")
        ports = [p for p in (self.rpc_port, self.faucet_port, self.scoring_port, self.admin_port, self.blob_port) if p]
        if len(ports) != len(set(ports)):
            raise ValueError("rpc_port, faucet_port, scoring_port, admin_port and blob_port must differ")
        return self

    @property
    def public_host(self) -> str:
        """The host clients use: a wildcard bind is reached on loopback."""
        return "127.0.0.1" if self.host in WILDCARD_HOSTS else self.host

    def url(self, port: int, scheme: str = "http") -> str:
        host = self.public_host
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        return f"{scheme}://{host}:{port}"

    @property
    def scoring_cache(self) -> Path:
        return self.scoring_cache_dir or self.sim.path / "scoring-cache"

    def sim_settings(self, blob_port: int | None = None) -> SimSettings:
        """The served network's genesis, its blobs published at `blob_port` (the bound port)."""
        port = self.blob_port if blob_port is None else blob_port
        return self.sim.model_copy(update={"blob_url": self.url(port)})
