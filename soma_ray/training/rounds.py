"""Training rounds: train → commit → reveal → train again from the revealed weights.

The quickstart runs this cadence from a cron; here one job does it: after each commit it waits
(polling the driver) until the reveal has happened in the next epoch, then warm-starts the next
round from the weights it just revealed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from soma_ray.chain.types import ModelStatus
from soma_ray.config.models import TrainConfig
from soma_ray.driver.artifacts import Artifacts
from soma_ray.driver.results import CommitResult, DriverStatus
from soma_ray.driver_client import call
from soma_ray.training.trainer import TrainingOutcome, fresh_run_name, run_training

log = logging.getLogger("soma_ray.train")


def wait_for_reveal(handle: Any, poll_seconds: float, timeout: float | None = None) -> None:
    """Until the driver has no reveal outstanding (it reveals by itself in commit epoch + 1)."""
    started = time.monotonic()
    while True:
        status: DriverStatus = call(handle.status.remote())
        if status.next_deadline is None and status.model_status == ModelStatus.ACTIVE:
            return
        if timeout is not None and time.monotonic() - started > timeout:
            raise TimeoutError(f"no reveal within {timeout:.0f} s (driver says: {status.next_deadline})")
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
