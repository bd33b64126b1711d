"""A seeded board with rivals, served: the official client's view (through our SdkChain) shows the
board's owners and commissions, and the rivals' fills and claims after epoch changes made
through the admin service."""

from __future__ import annotations

from pathlib import Path

from soma_ray.chain.sdk import SdkChain
from soma_ray.chain.served import LocalnetServer
from soma_ray.chain.sim.rivals import rival_accounts
from soma_ray.chain.sim.settings import RivalSettings
from soma_ray.chain.types import TargetStatus
from soma_ray.protocol.commitments import canonical_address
from tests.chain.served.kit import served_settings

RIVALS = {"seed": 5, "accounts": 2, "fill_share": 0.5}


async def test_rivals_play_on_the_served_network(tmp_path: Path) -> None:
    settings = served_settings(tmp_path, genesis_models=8, genesis_board={"seed": 3, "owners": 3}, rivals=RIVALS)
    rivals = {canonical_address(kp.address()) for kp in rival_accounts(RivalSettings.model_validate(RIVALS))}
    async with LocalnetServer(settings) as server:
        urls = server.urls
        sdk = await SdkChain.connect(rpc_url=urls.rpc_url, faucet_url=urls.faucet_url, admin_url=urls.admin_url)
        try:
            models = await sdk.active_models()
            assert len(models) == 8 and len({m.owner for m in models}) == 3
            assert len({m.commission_rate for m in models}) > 1
            for _ in range(4):
                await sdk.advance_epoch()
            filled = await sdk.all_targets(TargetStatus.FILLED)
            assert filled and {t.submitter for t in filled} <= rivals
            # fills of epoch 1 are claimable from epoch 3 (§6)
            assert sum([await server.sim.tx_count(r, "ClaimRewards", 3) for r in rivals]) > 0
            assert rivals & {m.owner for m in await sdk.active_models()}  # a rival model went live
        finally:
            await sdk.close()
