"""Data submission: `ray job submit --working-dir . -- python jobs/submit_data.py --config configs/submit.yaml`."""

import asyncio

from soma_ray.config import SubmitConfig
from soma_ray.job import job_main
from soma_ray.submission.job import run_submitter
from soma_ray.submission.progress import SubmitReport


async def _run(config: SubmitConfig) -> SubmitReport:
    return await asyncio.to_thread(run_submitter, config)


if __name__ == "__main__":
    print(job_main(SubmitConfig, _run).line())
