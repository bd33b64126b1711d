"""Main job: `ray job submit --working-dir . -- python jobs/cycle.py --config configs/cycle.yaml`.

The same code path as `soma-ray --config configs/cycle.yaml cycle`; run_cycle prints its progress
and the ledger.
"""

from soma_ray.config.jobs import CycleConfig
from soma_ray.cycle import run_cycle
from soma_ray.job import job_main

if __name__ == "__main__":
    job_main(CycleConfig, run_cycle)
