"""First steps (kind: run): `ray job submit --working-dir . -- python jobs/lifecycle.py --config configs/sim.yaml`."""

from rich.console import Console

from soma_ray.config import RunConfig
from soma_ray.job import job_main
from soma_ray.lifecycle import run_lifecycle
from soma_ray.status import status_table

if __name__ == "__main__":
    Console().print(status_table(job_main(RunConfig, run_lifecycle)))
