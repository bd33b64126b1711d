"""Talking to a wallet's driver actor from outside it: `soma-ray driver status|stop`, `soma-ray
claim`, `soma-ray reveal` and the long-running `jobs/driver.py`. The actor stays the one process
that signs; these only ask it to act and show what its ledger says.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from soma_ray.chain.wallet import load_keypair
from soma_ray.config import RunConfig, load_config, load_job_config
from soma_ray.config.jobs import driver_config
from soma_ray.driver.config import JobConfig
from soma_ray.driver.remote import call
from soma_ray.driver.results import DriverStatus, StakeResult
from soma_ray.protocol.constants import to_soma
from soma_ray.runtime import ensure_ray


def connect_ray() -> None:
    """`ensure_ray`, with the actor's logs left in the actor's log (a local Ray started here
    lives, with its driver actor, only as long as this process)."""
    ensure_ray(log_to_driver=False)


def any_recipe(path: Path | None, overrides: Sequence[str] = ()) -> JobConfig:
    """A recipe of any kind: the driver reads only its chain, storage, wallet and driver sections."""
    return load_job_config(path, overrides) if path is not None else load_config(RunConfig, None, overrides)


def wallet_driver(config: JobConfig) -> Any:
    """The running driver actor of the config's wallet, or a new one (which stores a board snapshot
    at each new epoch, and the review with `review.every_epoch`)."""
    from soma_ray.driver.actor import driver_handle
    from soma_ray.review.run import recorder_for

    recorder = recorder_for(config)
    config = driver_config(config)
    load_keypair(config.wallet)  # no wallet: say so before starting Ray
    connect_ray()
    return driver_handle(config, recorder)


def stop_wallet_driver(config: JobConfig) -> bool:
    from soma_ray.driver.actor import stop_driver

    config = driver_config(config)
    load_keypair(config.wallet)
    connect_ray()
    return stop_driver(config)


def _soma(shannons: int) -> str:
    return f"{to_soma(shannons):.9f} SOMA"


def _model_status(status: DriverStatus) -> str | None:
    return status.model_status.value if status.model_status is not None else None


def status_table(status: DriverStatus) -> Table:
    ledger = status.ledger
    model = f"{status.model_id} ({_model_status(status)})" if status.model_id else "none yet"
    pending = status.pending
    rows = [
        ("address", status.address),
        ("network / epoch", f"{status.network} / {status.epoch}"),
        ("balance", _soma(status.balance)),
        ("model", model),
        ("next deadline", status.next_deadline or "none"),
        ("pending actions", f"{len(pending)}" + (f": {', '.join(pending)}" if pending else "")),
        ("dry run", "yes" if status.dry_run else "no"),
        ("balance at first start", _soma(ledger.start_balance)),
        ("submissions / claims", f"{ledger.submissions} / {ledger.claims}"),
        ("bonds locked / returned", f"{_soma(ledger.bonds_locked)} / {_soma(ledger.bonds_returned)}"),
        ("rewards as submitter", _soma(ledger.rewards_as_submitter)),
        ("rewards as model owner", _soma(ledger.rewards_as_model_owner)),
        ("claimer incentives", _soma(ledger.claimer_incentives)),
        ("fees", _soma(ledger.fees)),
    ]
    table = Table(title="driver", show_header=False)
    for key, value in rows:
        table.add_row(key, str(value))
    return table


def status_line(status: DriverStatus) -> str:
    """One line for a long-running log."""
    ledger = status.ledger
    return (
        f"epoch {status.epoch} | balance {_soma(status.balance)} | model {_model_status(status) or '-'} | "
        f"pending {len(status.pending)} | next {status.next_deadline or '-'} | "
        f"submissions {ledger.submissions}, claims {ledger.claims}"
    )


def watch_driver(config: JobConfig, every: float = 30.0, once: bool = False, console: Console | None = None) -> None:
    """Start (or find) the wallet's driver, print its status, then a line every `every` seconds."""
    console = console or Console()
    handle = wallet_driver(config)
    console.print(status_table(call(handle.status.remote())))
    if once:
        return
    console.print(f"the driver acts on every new epoch; status every {every:g} s (Ctrl-C stops watching)")
    try:
        while True:
            time.sleep(every)
            console.print(status_line(call(handle.status.remote())), highlight=False)
    except KeyboardInterrupt:
        console.print("stopped watching; the driver actor keeps running (`soma-ray driver stop` ends it)")


def stake_add(config: JobConfig, model_id: str, amount: int) -> StakeResult:
    """Ask the wallet's driver to stake `amount` shannons into `model_id` (one request id per call:
    Ray's retries of the call send it once)."""
    result: StakeResult = call(wallet_driver(config).add_stake.remote(model_id, amount, uuid.uuid4().hex))
    return result


def stake_withdraw(config: JobConfig, model_id: str | None, staked_ids: Sequence[str] = ()) -> list[StakeResult]:
    """Ask the driver to withdraw our StakedSoma objects in `model_id`'s pool (or the given ones)."""
    return list(call(wallet_driver(config).withdraw_stake.remote(model_id, list(staked_ids) or None)))


def set_commission(config: JobConfig, rate: int, model_id: str | None) -> StakeResult:
    """Ask the driver to stage `rate` bps as the commission of our model (or `model_id`)."""
    result: StakeResult = call(wallet_driver(config).set_commission.remote(rate, model_id))
    return result


__all__ = [
    "any_recipe", "set_commission", "stake_add", "stake_withdraw", "connect_ray", "status_line", "status_table", "stop_wallet_driver", "wallet_driver", "watch_driver",
]
