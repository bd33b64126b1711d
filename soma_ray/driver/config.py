"""`JobConfig`: what every job's recipe carries, which is all a wallet's driver actor is made from.

Every job kind (run, train, sweep, submit, cycle) extends it with its own sections; the driver
reads only these four: the network, the storage for uploads, the signing wallet and its own
`driver:` settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from soma_ray.chain.config import ChainConfig, WalletConfig
from soma_ray.driver.settings import DriverSettings
from soma_ray.paths import absolute
from soma_ray.storage.config import StorageConfig


class JobConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    chain: ChainConfig = Field(default_factory=ChainConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    wallet: WalletConfig = Field(default_factory=WalletConfig)
    driver: DriverSettings = Field(default_factory=DriverSettings)

    def with_absolute_paths(self, base: Path) -> Self:
        """Local paths made absolute against `base`: the driver actor (and any process that
        runs elsewhere) may start in another working directory."""
        sim = self.chain.sim.model_copy(update={"path": absolute(self.chain.sim.path, base)})
        local = self.storage.local.model_copy(update={"root": absolute(self.storage.local.root, base)})
        return self.model_copy(update={
            "wallet": self.wallet.model_copy(update={"key_file": absolute(self.wallet.key_file, base)}),
            "driver": self.driver.model_copy(update={"state_path": absolute(self.driver.state_path, base)}),
            "chain": self.chain.model_copy(update={"sim": sim}),
            "storage": self.storage.model_copy(update={"local": local}),
        })
