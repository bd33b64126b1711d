"""A snapshot of the network (and optionally one wallet) for people to read."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table

from soma_ray.chain.base import Chain
from soma_ray.chain.types import NetworkInfo, TargetStatus
from soma_ray.protocol.constants import to_soma


@dataclass(frozen=True)
class NetworkStatus:
    network: NetworkInfo
    open_targets: int
    active_models: int
    address: str | None = None
    balance: int | None = None
    coins: int | None = None


async def gather_status(chain: Chain, address: str | None = None) -> NetworkStatus:
    info = await chain.info()
    open_targets = len(await chain.all_targets(TargetStatus.OPEN))
    models = len(await chain.active_models())
    if address is None:
        return NetworkStatus(info, open_targets, models)
    coins = await chain.coins(address)
    return NetworkStatus(info, open_targets, models, address, sum(c.balance for c in coins), len(coins))


def status_table(status: NetworkStatus) -> Table:
    info = status.network
    table = Table(title=f"SOMA network: {info.chain}", show_header=False)
    rows = [
        ("epoch", str(info.epoch)),
        ("protocol version", str(info.protocol_version)),
        ("distance threshold", f"{info.distance_threshold:.4f}"),
        ("open targets", str(status.open_targets)),
        ("active models", str(status.active_models)),
        ("reward per target", f"{to_soma(info.reward_per_target):.9f} SOMA"),
        ("emission pool", f"{to_soma(info.emission_pool_balance):,.3f} SOMA"),
        ("hits this epoch / EMA", f"{info.hits_this_epoch} / {info.hits_ema}"),
        ("embedding dim", str(info.embedding_dim)),
    ]
    if status.address is not None:
        rows += [
            ("wallet", status.address),
            ("balance", f"{to_soma(status.balance or 0):.9f} SOMA in {status.coins} coin(s)"),
        ]
    for key, value in rows:
        table.add_row(key, value)
    return table
