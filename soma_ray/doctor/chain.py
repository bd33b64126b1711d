"""The network: reachable, speaking our API version, the wallet's balance, the scoring service."""

from __future__ import annotations

import asyncio

from soma_ray.chain.base import Chain
from soma_ray.chain.config import ChainConfig
from soma_ray.chain.errors import ChainError
from soma_ray.chain.factory import open_chain
from soma_ray.doctor.result import Check, fail, info, ok, problem
from soma_ray.protocol.constants import to_soma

FUNDING_HINT = {
    "sim": "`soma-ray sim faucet`",
    "localnet": "`soma-ray sim faucet --chain localnet` (or soma-sdk's request_faucet)",
    "testnet": "the testnet faucet (https://faucet.testnet.soma.org)",
}


async def chain_checks(
    config: ChainConfig, address: str | None, *, needed: bool, funds_needed: bool, timeout: float = 20.0
) -> list[Check]:
    if config.network == "sim" and not config.sim.db_path.is_file():
        return [info("chain", f"the embedded network at {config.sim.path} does not exist yet; "
                     "the first command makes it (e.g. `soma-ray status`)")]
    try:
        chain = await asyncio.wait_for(open_chain(config), timeout)
    except TimeoutError:
        return [problem("chain", f"{config.network} did not answer within {timeout:g} s; check the URL and the network",
                        needed=needed)]
    except ChainError as err:
        return [problem("chain", str(err), needed=needed)]
    try:
        return await _on(chain, config, address, needed=needed, funds_needed=funds_needed, timeout=timeout)
    finally:
        await chain.close()


async def _on(
    chain: Chain, config: ChainConfig, address: str | None, *, needed: bool, funds_needed: bool, timeout: float
) -> list[Check]:
    from soma_ray.chain.sdk import SdkChain

    checks: list[Check] = []
    try:
        where = f"{config.network}"
        if isinstance(chain, SdkChain):
            version = await asyncio.wait_for(chain.api_version(), timeout)
            where = f"{config.network} at {chain.endpoints.rpc_url} (server {version}, API version matches soma-sdk)"
        else:
            where = f"the embedded network at {config.sim.path}"
        network = await asyncio.wait_for(chain.info(), timeout)
        checks.append(ok("chain", f"{where}: epoch {network.epoch}, protocol version {network.protocol_version}"))
        if address is not None:
            balance = await asyncio.wait_for(chain.balance(address), timeout)
            hint = FUNDING_HINT.get(config.network, "the network's faucet")
            if balance > 0:
                checks.append(ok("balance", f"{to_soma(balance):.9f} SOMA at {address}"))
            else:
                checks.append(problem("balance", f"the wallet {address} holds 0 SOMA; fund it with {hint}",
                                      needed=funds_needed))
    except TimeoutError:
        checks.append(problem("chain", f"{config.network} stopped answering (over {timeout:g} s); retry later",
                              needed=needed))
    except ChainError as err:
        checks.append(problem("chain", f"{err}; upgrade soma-sdk or point chain.network at a matching node"
                              if "version" in str(err).lower() else str(err), needed=needed))
    if config.scoring_url:
        checks.append(await _scoring(chain, config.scoring_url, timeout))
    return checks


async def _scoring(chain: Chain, url: str, timeout: float) -> Check:
    from soma_ray.chain.sdk import SdkChain

    if not isinstance(chain, SdkChain):
        return info("scoring service", f"{url} is not used by the embedded network (it scores in process)")
    try:
        healthy = await asyncio.wait_for(chain.scoring_health(), timeout)
    except TimeoutError:
        return fail("scoring service", f"{url} did not answer within {timeout:g} s; check chain.scoring_url")
    except ChainError as err:
        return fail("scoring service", f"{err}; check chain.scoring_url and that the service runs")
    if not healthy:
        return fail("scoring service", f"{url} answers but reports it cannot score; check the service's log")
    return ok("scoring service", f"{url} is healthy")
