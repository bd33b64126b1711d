"""Chaos soak: chain faults through the real client (soma-sdk over gRPC), no Ray.

One driver over `SdkChain` against an in-process served network with every fault knob on (lost
answers, resets before executing, lock conflicts, slow answers, epochs ending in flight), two
submitter jobs and a training commit round (create, commit, reveal in commit epoch + 1, an update
commit later), claims after the audit window. After every epoch and at the end it checks: no
submit/create/commit/reveal/claim executed twice (the network's own transaction table), every
commit revealed in exactly commit epoch + 1, nothing left open, the ledger equal to the chain's
balance and fees to the shannon. It prints the figures as JSON (and writes them with --json).

    PYTHONPATH=$PWD .venv/bin/python bench/chaos.py --seed 1 --faults 200 --epochs 8

Exit status 1 when an invariant broke (the line says which).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

from soma_ray.chaos import InvariantBroken, soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", type=int, default=200, help="run until at least this many faults were injected")
    parser.add_argument("--epochs", type=int, default=8, help="... and at least this many epochs passed")
    parser.add_argument("--per-round", type=int, default=4, help="submissions each job tries per epoch")
    parser.add_argument("--folder", type=Path, default=None, help="where the network lives (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every fault and settlement")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="soma-chaos-") as tmp:
        folder = args.folder or Path(tmp)
        try:
            report = asyncio.run(soak(folder, seed=args.seed, faults=args.faults, epochs=args.epochs,
                                      per_round=args.per_round))
        except InvariantBroken as err:
            print(f"invariant broken: {err}", file=sys.stderr)
            return 1
    print(report.as_json())
    if args.json:
        args.json.write_text(report.as_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
