"""What every `jobs/*.py` entry point shares: parse `--config/--set`, run, one-line errors."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from soma_ray.chain.errors import ChainError
from soma_ray.chain.wallet import WalletError
from soma_ray.config import ConfigError, load_config
from soma_ray.data.errors import DataError
from soma_ray.driver.config import JobConfig
from soma_ray.errors import CycleError
from soma_ray.storage import StorageError
from soma_ray.training.errors import ExportError, SweepFailed, WarmStartError

C = TypeVar("C", bound=JobConfig)

# Failures a user can fix: reported as one line, never as a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (
    WalletError, ChainError, StorageError, TimeoutError, DataError, WarmStartError, ExportError, SweepFailed,
    CycleError,
)
R = TypeVar("R")


def job_parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, help="YAML recipe (see configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="A.B=VALUE", help="override a field")
    return parser


def guard_job(work: Callable[[], R]) -> R:
    """Run a job's work; bad config exits 2 and a fixable failure exits 1, each as one line."""
    stderr = Console(stderr=True)
    try:
        return work()
    except ConfigError as exc:
        stderr.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except USER_ERRORS as exc:
        stderr.print(f"error: {type(exc).__name__}: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


def job_main(
    model: type[C], runner: Callable[[C], Coroutine[Any, Any, R]], argv: Sequence[str] | None = None
) -> R:
    """Entry point for `ray job submit -- python jobs/<name>.py --config configs/<recipe>.yaml`."""
    args = job_parser(model.__doc__).parse_args(argv)
    return guard_job(lambda: asyncio.run(runner(load_config(model, args.config, args.set))))
