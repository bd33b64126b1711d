"""Training: `ray job submit --working-dir . -- python jobs/train.py --config configs/train-tiny.yaml`."""

import asyncio

from soma_ray.config import TrainConfig
from soma_ray.job import job_main
from soma_ray.training.trainer import TrainingOutcome, run_training


async def _run(config: TrainConfig) -> TrainingOutcome:
    return await asyncio.to_thread(run_training, config)


if __name__ == "__main__":
    outcome = job_main(TrainConfig, _run)
    print(f"run {outcome.run}: best held-out loss {outcome.best_heldout_loss:.5f}; artifacts: {outcome.manifest}")
