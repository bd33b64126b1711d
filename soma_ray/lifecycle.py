"""The first steps on a network (`kind: run`): fund a new wallet, advance the epoch, report.

The whole lifecycle (train → commit/reveal → score/submit → claim) is the main job, `soma_ray/cycle.py`.
"""

from __future__ import annotations

from soma_sdk import Keypair

from soma_ray.chain.base import Chain
from soma_ray.chain.factory import open_chain
from soma_ray.config.jobs import RunConfig
from soma_ray.protocol.commitments import canonical_address
from soma_ray.status import NetworkStatus, gather_status


async def run_lifecycle(config: RunConfig, chain: Chain | None = None) -> NetworkStatus:
    chain = chain or await open_chain(config.chain)
    try:
        wallet = Keypair.generate()  # a fresh wallet each run; its secret stays in memory
        address = canonical_address(wallet.address())
        for _ in range(config.run.faucet_requests):
            await chain.faucet(address)
        for _ in range(config.run.advance_epochs):
            await chain.advance_epoch()
        return await gather_status(chain, address)
    finally:
        await chain.close()
