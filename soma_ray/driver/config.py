"""`JobConfig`: what every job's recipe carries, which is all a wallet's driver actor is made from.

Every job kind (run, train, sweep, submit, cycle) extends it with its own sections; the driver
reads only these four: the network, the storage for uploads, the signing wallet and its own
`driver:` settings.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from soma_ray.chain.config import ChainConfig, WalletConfig
from soma_ray.driver.settings import DriverSettings
from soma_ray.storage.config import StorageConfig


class JobConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    chain: ChainConfig = Field(default_factory=ChainConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    wallet: WalletConfig = Field(default_factory=WalletConfig)
    driver: DriverSettings = Field(default_factory=DriverSettings)
