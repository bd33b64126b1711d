"""Training rounds: train → commit → reveal → train again from the revealed weights.

The quickstart runs this cadence from a cron; here one job does it: after each commit it waits
(polling the driver) until the reveal has happened in the next epoch, then warm-starts the next
round from the weights it just revealed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from soma_ray.chain.types import ModelStatus
from soma_ray.chain.wallet import load_keypair
from soma_ray.driver.artifacts import Artifacts
from soma_ray.driver.remote import call
from soma_ray.driver.results import CommitResult, DriverStatus
from soma_ray.errors import WaitTimeout
from soma_ray.training.config import TrainConfig
from soma_ray.training.trainer import TrainingOutcome, check_inputs, fresh_run_name, run_training

if TYPE_CHECKING:
    from soma_ray.driver.actor import EpochHook  # imports Ray: only for the type

log = logging.getLogger("soma_ray.train")


def wait_for_reveal(handle: Any, poll_seconds: float, timeout: float | None = None) -> None:
    """Until the driver has no reveal outstanding (it reveals by itself in commit epoch + 1)."""
    started = time.monotonic()
    while True:
        status: DriverStatus = call(handle.status.remote())
        if status.next_deadline is None and status.model_status == ModelStatus.ACTIVE:
            return
        if timeout is not None and time.monotonic() - started > timeout:
            raise WaitTimeout(f"no reveal within {timeout:.0f} s (driver says: {status.next_deadline})")
        time.sleep(poll_seconds)


def run_rounds(config: TrainConfig, handle: Any, *, poll_seconds: float = 30.0,
               timeout: float | None = None) -> list[TrainingOutcome]:
    """`config.export.rounds` rounds; each is committed through the driver (`handle`)."""
    outcomes: list[TrainingOutcome] = []
    base = config.training.name or fresh_run_name()
    current = config
    for number in range(config.export.rounds):
        name = base if config.export.rounds == 1 else f"{base}-round{number}"
        current = current.model_copy(update={"training": current.training.model_copy(update={"name": name})})
        outcome = run_training(current)
        outcomes.append(outcome)
        if outcome.manifest is None:
            raise RuntimeError(f"round {number} produced no export; nothing to commit")
        result: CommitResult = call(handle.commit.remote(str(outcome.manifest)))
        log.info("round %d committed to model %s; waiting for its reveal", number, result.model_id)
        if number + 1 < config.export.rounds:
            wait_for_reveal(handle, poll_seconds, timeout)
            weights = Artifacts.read(outcome.manifest).weights_path(outcome.manifest)
            warm = current.warm_start.model_copy(update={"path": weights, "url": None, "model_id": None})
            current = current.model_copy(update={"warm_start": warm})
    return outcomes


@dataclass(frozen=True)
class TrainJobResult:
    """What a train job did: one outcome per round, and whether the rounds were committed."""

    outcomes: list[TrainingOutcome]
    committed: bool

    def lines(self) -> list[str]:
        """What a train job prints when it ends."""
        lines = [f"committed {o.manifest}" for o in self.outcomes] if self.committed else []
        last = self.outcomes[-1]
        lines.append(f"run {last.run}: best held-out loss {last.best_heldout_loss:.5f}")
        if last.manifest is not None:
            lines.append(f"artifacts: {last.manifest}")
        return lines


def train_job(config: TrainConfig, on_epoch: EpochHook | None = None) -> TrainJobResult:
    """The train job, whichever way it is started (`soma-ray train`, `jobs/train.py`): one run,
    or with `export.commit` every round committed through the wallet's driver actor (which calls
    `on_epoch` at each new epoch: the entry points pass the review's board snapshot)."""
    if not config.export.commit:
        return TrainJobResult([run_training(config)], committed=False)
    from soma_ray.driver.actor import driver_handle

    check_inputs(config)  # before the driver actor starts Ray
    load_keypair(config.wallet)
    poll = 0.5 if config.chain.network == "sim" else config.driver.poll_seconds
    return TrainJobResult(run_rounds(config, driver_handle(config, on_epoch), poll_seconds=poll), committed=True)
