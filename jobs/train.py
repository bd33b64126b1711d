"""Training: `ray job submit --working-dir . -- python jobs/train.py --config configs/train-tiny.yaml`.

With `export.commit: true` the exported artifacts go to the wallet's driver actor, which creates
the model if needed, commits them with a fresh key and reveals them in the next epoch; with
`export.rounds: N` the job then trains again from the revealed weights, N times.
The same code path as `soma-ray --config <recipe> train`.
"""

from soma_ray.job import job_main
from soma_ray.review.run import recorder_for
from soma_ray.training.config import TrainConfig
from soma_ray.training.rounds import train_job

if __name__ == "__main__":
    # the driver actor stores a board snapshot at each new epoch, as under the other jobs
    print("\n".join(job_main(TrainConfig, lambda config: train_job(config, recorder_for(config))).lines()))
