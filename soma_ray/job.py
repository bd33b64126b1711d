"""What every entry point shares (`soma-ray <command>` and `jobs/*.py`): parse `--config/--set`,
run the job's library function, report a fixable failure as one line and an exit status."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from soma_ray.config.loader import ConfigError, load_config
from soma_ray.driver.config import JobConfig
from soma_ray.errors import InputError, SomaRayError
from soma_ray.runtime import VERBOSE_ENV, set_verbose

C = TypeVar("C", bound=JobConfig)
R = TypeVar("R")


class _Verbose(argparse.Action):
    """`--verbose`: set as soon as parsed, for every later `runtime.verbose()` of the job."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        set_verbose(True)
        setattr(namespace, self.dest, True)


def job_parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, help="YAML recipe (see configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="A.B=VALUE", help="override a field")
    parser.add_argument("--verbose", action=_Verbose, nargs=0, default=False,
                        help=f"show Ray's own progress and worker output too (or {VERBOSE_ENV}=1)")
    return parser


def failure_line(error: SomaRayError) -> str:
    """`Type: message`, without the type twice when the message already starts with it."""
    text = str(error)
    name = type(error).__name__
    return text if isinstance(error, ConfigError) or text.startswith(name) else f"{name}: {text}"


def guard_job(work: Callable[[], R]) -> R:
    """Run an entry point's work; bad input (`InputError`: a config, data source, key or URL) exits 2
    and any other fixable failure exits 1, each as one line on stderr. Anything else is a bug and
    keeps its traceback."""
    try:
        return work()
    except SomaRayError as error:
        Console(stderr=True).print(f"error: {failure_line(error)}", markup=False, highlight=False, soft_wrap=True)
        _quiet_teardown()
        sys.exit(2 if isinstance(error, InputError) else 1)


def _quiet_teardown() -> None:
    """After the one error line, nothing more on stderr: native runtimes torn down at exit (soma-sdk's
    tokio threads still reconnecting to an unreachable node) can print a Rust panic backtrace there."""
    stream = sys.__stderr__
    if stream is None or sys.stderr is not stream:
        return  # run in process by a caller that captures stderr (a test runner): leave its fd alone
    stream.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def run_sync_or_async(outcome: Any) -> Any:
    """A runner's result, awaited when the runner was a coroutine function."""
    return asyncio.run(outcome) if inspect.iscoroutine(outcome) else outcome


def job_main(model: type[C], runner: Callable[[C], Any], argv: Sequence[str] | None = None) -> Any:
    """Entry point for `ray job submit -- python jobs/<name>.py --config configs/<recipe>.yaml`:
    `runner` is the job's library function, plain or async."""
    args = job_parser(model.__doc__).parse_args(argv)
    return guard_job(lambda: run_sync_or_async(runner(load_config(model, args.config, args.set))))
