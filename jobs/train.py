"""Training: `ray job submit --working-dir . -- python jobs/train.py --config configs/train-tiny.yaml`.

With `export.commit: true` the exported artifacts go to the wallet's driver actor, which creates
the model if needed, commits them with a fresh key and reveals them in the next epoch; with
`export.rounds: N` the job then trains again from the revealed weights, N times.
"""

import asyncio

from soma_ray.config import TrainConfig
from soma_ray.job import job_main
from soma_ray.training.trainer import TrainingOutcome, run_training


def _train(config: TrainConfig) -> TrainingOutcome:
    if not config.export.commit:
        return run_training(config)
    from soma_ray.driver.actor import driver_handle
    from soma_ray.training.rounds import run_rounds

    poll = 0.5 if config.chain.network == "sim" else config.driver.poll_seconds
    outcomes = run_rounds(config, driver_handle(config), poll_seconds=poll)
    for outcome in outcomes:
        print(f"committed {outcome.manifest}")
    return outcomes[-1]


async def _run(config: TrainConfig) -> TrainingOutcome:
    return await asyncio.to_thread(_train, config)


if __name__ == "__main__":
    outcome = job_main(TrainConfig, _run)
    print(f"run {outcome.run}: best held-out loss {outcome.best_heldout_loss:.5f}; artifacts: {outcome.manifest}")
