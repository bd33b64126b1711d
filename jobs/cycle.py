"""Main job: `ray job submit --working-dir . -- python jobs/cycle.py --config configs/cycle.yaml`."""

import asyncio

from soma_ray.config import CycleConfig
from soma_ray.cycle import CycleResult, run_cycle
from soma_ray.job import job_main


async def _run(config: CycleConfig) -> CycleResult:
    return await asyncio.to_thread(run_cycle, config)


if __name__ == "__main__":
    job_main(CycleConfig, _run)  # run_cycle prints its progress and the ledger
