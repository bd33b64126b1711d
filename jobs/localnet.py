"""Serve the embedded network as a localnet until interrupted: `python jobs/localnet.py --config configs/localnet.yaml`.

Same as `soma-ray localnet`: the fullnode RPC, faucet, scoring and admin services of
`chain.localnet` (127.0.0.1:9000/9123/9124/9125 by default) over the network in
`chain.localnet.sim.path`, for the official soma-sdk client or `network: localnet` recipes.
"""

from soma_ray.driver_client import any_recipe
from soma_ray.job import guard_job, job_parser
from soma_ray.localnet import run_localnet

if __name__ == "__main__":
    args = job_parser(__doc__).parse_args()
    guard_job(lambda: run_localnet(any_recipe(args.config, args.set)))
