"""Open the network a config names: the embedded simulation, testnet, localnet or a URL."""

from __future__ import annotations

from soma_ray.chain.base import Chain
from soma_ray.chain.config import ChainConfig


async def open_chain(config: ChainConfig) -> Chain:
    if config.network == "sim":
        from soma_ray.chain.sim import SimChain

        return SimChain(config.sim)
    from soma_ray.chain.sdk import SdkChain

    is_preset = config.network in ("testnet", "localnet")
    return await SdkChain.connect(
        chain=config.network if is_preset else None,
        rpc_url=config.rpc_url or (None if is_preset else config.network),
        faucet_url=config.faucet_url,
        scoring_url=config.scoring_url,
        admin_url=config.admin_url,
    )
