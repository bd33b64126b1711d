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
from soma_ray.config import ConfigError, load_config
from soma_ray.config.models import JobConfig
from soma_ray.data.errors import DataError
from soma_ray.storage import StorageError
from soma_ray.training.errors import ExportError, SweepFailed, WarmStartError
from soma_ray.wallet import WalletError

C = TypeVar("C", bound=JobConfig)

# Failures a user can fix: reported as one line, never as a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (
    WalletError, ChainError, StorageError, TimeoutError, DataError, WarmStartError, ExportError, SweepFailed,
)
R = TypeVar("R")


def job_main(
    model: type[C], runner: Callable[[C], Coroutine[Any, Any, R]], argv: Sequence[str] | None = None
) -> R:
    """Entry point for `ray job submit -- python jobs/<name>.py --config configs/<recipe>.yaml`."""
    parser = argparse.ArgumentParser(description=model.__doc__)
    parser.add_argument("--config", type=Path, help="YAML recipe (see configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="A.B=VALUE", help="override a field")
    args = parser.parse_args(argv)
    stderr = Console(stderr=True)
    try:
        config = load_config(model, args.config, args.set)
        return asyncio.run(runner(config))
    except ConfigError as exc:
        stderr.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except USER_ERRORS as exc:
        stderr.print(f"error: {type(exc).__name__}: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
