"""How long `soma-ray --help` (and `soma-ray doctor --help`) take, in fresh interpreters.

    .venv/bin/python bench/startup.py --runs 10

Prints min / median / max wall seconds per command. The target is under 1 s for `--help`;
tests/test_startup.py checks the cause instead of the clock (no heavy module is imported).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = (["--help"], ["doctor", "--help"], ["status", "--help"])


def time_command(args: list[str], runs: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "soma_ray.cli", *args], check=True, capture_output=True, env=env)
        timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    time_command(["--help"], 1)  # warm the file cache and __pycache__
    for command in COMMANDS:
        timings = time_command(command, args.runs)
        print(f"soma-ray {' '.join(command):<16} min {min(timings):.3f} s  median {statistics.median(timings):.3f} s  "
              f"max {max(timings):.3f} s  ({args.runs} runs)")


if __name__ == "__main__":
    main()
