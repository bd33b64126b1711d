"""Training: `ray job submit --working-dir . -- python jobs/train.py --config configs/train-tiny.yaml`.

With `export.commit: true` the exported artifacts go to the wallet's driver actor, which creates
the model if needed, commits them with a fresh key and reveals them in the next epoch.
"""

import asyncio

import ray

from soma_ray.config import TrainConfig
from soma_ray.job import job_main
from soma_ray.training.trainer import TrainingOutcome, run_training


def _train_and_commit(config: TrainConfig) -> TrainingOutcome:
    outcome = run_training(config)
    if config.export.commit and outcome.manifest is not None:
        from soma_ray.driver.actor import driver_handle

        result = ray.get(driver_handle(config).commit.remote(str(outcome.manifest)))
        print(f"committed {outcome.manifest} to model {result['model_id']} ({result['status']})")
    return outcome


async def _run(config: TrainConfig) -> TrainingOutcome:
    return await asyncio.to_thread(_train_and_commit, config)


if __name__ == "__main__":
    outcome = job_main(TrainConfig, _run)
    print(f"run {outcome.run}: best held-out loss {outcome.best_heldout_loss:.5f}; artifacts: {outcome.manifest}")
