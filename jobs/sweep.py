"""Sweep: `ray job submit --working-dir . -- python jobs/sweep.py --config configs/sweep-tiny.yaml`."""

import asyncio

from soma_ray.config import SweepConfig
from soma_ray.job import job_main
from soma_ray.training.sweep import TrialRow, run_sweep


async def _run(config: SweepConfig) -> list[TrialRow]:
    return await asyncio.to_thread(run_sweep, config)


if __name__ == "__main__":
    job_main(SweepConfig, _run)  # run_sweep prints the ranked table
