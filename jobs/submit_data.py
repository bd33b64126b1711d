"""Data submission: `ray job submit --working-dir . -- python jobs/submit_data.py --config configs/submit.yaml`.

The same code path as `soma-ray --config configs/submit.yaml submit`.
"""

from soma_ray.job import job_main
from soma_ray.submission.config import SubmitConfig
from soma_ray.submission.job import run_submitter

if __name__ == "__main__":
    print(job_main(SubmitConfig, run_submitter).line())
