"""Sweep: `ray job submit --working-dir . -- python jobs/sweep.py --config configs/sweep-tiny.yaml`.

The same code path as `soma-ray --config configs/sweep-tiny.yaml sweep`; run_sweep prints the
ranked table.
"""

from soma_ray.job import job_main
from soma_ray.training.config import SweepConfig
from soma_ray.training.sweep import run_sweep

if __name__ == "__main__":
    job_main(SweepConfig, run_sweep)
