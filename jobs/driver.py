"""The wallet's driver, kept running: `ray job submit --working-dir . -- python jobs/driver.py --config <recipe>`.

Starts (or finds) the detached driver actor — it reveals and claims on every new epoch — and
prints its status every --every seconds until interrupted; --once prints it once and exits.
"""

from soma_ray.driver_client import any_recipe, watch_driver
from soma_ray.job import guard_job, job_parser

if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between status lines")
    parser.add_argument("--once", action="store_true", help="print the status once and exit")
    args = parser.parse_args()
    guard_job(lambda: watch_driver(any_recipe(args.config, args.set), every=args.every, once=args.once))
