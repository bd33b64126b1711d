"""Joining Ray from a job, the CLI or a library call: one rule for all of them.

A local Ray that soma-ray starts itself gets the settings of design.md's "environment facts":
no token authentication (an in-process `ray.init()` would otherwise write `~/.ray/auth_token`,
and every later `ray start` then turns token auth on and `ray job submit` fails), no usage stats,
loopback only. Ray's own chatter (its loggers, Ray Data's progress block, the workers' output,
Python warnings) goes to a log file in the Ray session's log folder, unless verbose
(`--verbose` or `SOMA_RAY_VERBOSE=1`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from soma_ray.native_stderr import filter_native_stderr

VERBOSE_ENV = "SOMA_RAY_VERBOSE"
# What a local Ray started by soma-ray runs with (its processes inherit them); a value the user
# set is kept.
LOCAL_RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # binds 127.0.0.1
}
LOG_NAME = "soma-ray-{pid}.log"
_QUIET_LOGGERS = ("ray", "py.warnings", "DeepSpeed")  # plus every "ray.*" logger with a console handler


def verbose(environ: Mapping[str, str] = os.environ) -> bool:
    """Ray's progress and worker output shown on the console (`--verbose`, `SOMA_RAY_VERBOSE=1`)."""
    return environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def set_verbose(on: bool) -> None:
    """What `--verbose` does: a flag every later `verbose()` reads, in this process and its children."""
    if on:
        os.environ[VERBOSE_ENV] = "1"


def starts_local_ray(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `ray.init()` here would start a new local Ray rather than join one (RAY_ADDRESS, or
    a `ray start` cluster of this machine), by Ray's own address discovery."""
    from ray._private.services import canonicalize_bootstrap_address

    address: Any = environ.get("RAY_ADDRESS") or None  # Ray's annotation says str; None means "discover"
    return canonicalize_bootstrap_address(address) is None


def local_ray_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to set before starting a local Ray: LOCAL_RAY_ENV less what the user set."""
    return {key: value for key, value in LOCAL_RAY_ENV.items() if key not in environ}


def init_kwargs(*, log_to_driver: bool | None, loud: bool, environ: Mapping[str, str]) -> dict[str, Any]:
    """`ray.init` arguments: the workers' output on the console only when asked for or verbose."""
    return {
        "address": environ.get("RAY_ADDRESS") or None,
        "log_to_driver": loud if log_to_driver is None else log_to_driver,
    }


def ensure_ray(*, log_to_driver: bool | None = None) -> None:
    """Join RAY_ADDRESS (or a `ray start` cluster on this machine), else start a local Ray with
    LOCAL_RAY_ENV. Unless verbose, Ray's chatter goes to the session's log file (`ray_log_path`);
    called again, it only quiets what was imported since (Ray Data, Ray Train)."""
    loud = verbose()
    if not loud:
        quiet_console()
    import ray

    if not ray.is_initialized():
        if starts_local_ray():
            new = local_ray_env(os.environ)
            os.environ.update(new)
            _loopback_in_this_process(new)
        ray.init(**init_kwargs(log_to_driver=log_to_driver, loud=loud, environ=os.environ))
    if not loud:
        quiet_console()  # Ray's loggers exist now; Ray Data and Ray Train configure theirs on import
        _RAY_LOG.open(ray_log_path())
        filter_native_stderr()  # after ray.init: Ray's own processes keep the real stderr
        _route_driver_errors()


def _loopback_in_this_process(new: Mapping[str, str]) -> None:
    """Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, when imported; the processes it starts
    read the environment, and this one must agree with them or it registers its real address."""
    if "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" in new:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False


def configure_logging() -> None:
    """A job's logging: everything on the console when verbose, else soma-ray's INFO lines and
    Ray's chatter to the log file (`ray_log_file`), warnings and errors still on stderr."""
    if verbose():
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    else:
        quiet_console()


def ray_log_path() -> Path:
    """This process's log file in the Ray session's log folder (beside Ray's own logs)."""
    import ray

    node = ray._private.worker._global_node
    folder = Path(node.get_session_dir_path()) / "logs" if node is not None else Path.cwd()
    return folder / LOG_NAME.format(pid=os.getpid())


class _DeferredFile(logging.Handler):
    """Records kept in memory until the session's log folder is known, then written to the file
    there; on a failed start they can still be shown (`replay`)."""

    LIMIT = 4_096  # records held before the log folder is known (a failed start shows them)

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[logging.LogRecord] = []
        self.file: logging.FileHandler | None = None
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    @property
    def path(self) -> Path | None:
        return Path(self.file.baseFilename) if self.file is not None else None

    def emit(self, record: logging.LogRecord) -> None:
        if self.file is not None:
            self.file.emit(record)
        elif len(self.pending) < self.LIMIT:
            self.pending.append(record)

    def open(self, path: Path) -> None:
        if self.file is not None and Path(self.file.baseFilename) == path:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        file = logging.FileHandler(path, encoding="utf-8")
        file.setFormatter(self.formatter)
        previous, self.file = self.file, file
        if previous is not None:
            previous.close()
        for record in self.pending:
            file.emit(record)
        self.pending.clear()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        super().close()


_RAY_LOG = _DeferredFile()


def _is_console(handler: logging.Handler) -> bool:
    """A stream handler that is not a file: Ray's, Ray Data's and Ray Train's console handlers."""
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)


def quiet_console(handler: logging.Handler | None = None) -> None:
    """Route Ray's loggers, Python warnings and soma-ray's own INFO lines to `handler` (the Ray
    log file by default) instead of the console; soma-ray's warnings and errors stay on stderr."""
    target = handler or _RAY_LOG
    logging.captureWarnings(True)
    names = {name for name in logging.root.manager.loggerDict if name == "ray" or name.startswith("ray.")}
    for name in sorted(names | set(_QUIET_LOGGERS)):
        logger = logging.getLogger(name)
        consoles = [h for h in logger.handlers if _is_console(h) or isinstance(h, _Stderr)]
        if name not in _QUIET_LOGGERS and not consoles:
            continue  # propagates to "ray", which is routed
        for h in consoles:
            logger.removeHandler(h)
        if target not in logger.handlers:
            logger.addHandler(target)
        logger.propagate = False
    # soma-ray's INFO lines (selections, near misses, fills) go to the file; its warnings and errors
    # also to stderr. It keeps propagating (a caller's own handlers, pytest's caplog, still see it).
    soma = logging.getLogger("soma_ray")
    if soma.level == logging.NOTSET:
        soma.setLevel(logging.INFO)
    for extra in (target, _Stderr()):
        if not any(type(h) is type(extra) for h in soma.handlers):
            soma.addHandler(extra)
    _quiet_ray_data()


class _Stderr(logging.Handler):
    """soma-ray's own warnings and errors, still on the console when the rest goes to the log
    (to whatever stderr is at the time: a test may capture it)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)


def _quiet_ray_data() -> None:
    """Ray Data draws its progress block (bars on a terminal, 8 log lines every 10 s otherwise)
    in the process that iterates the dataset; soma-ray shows its own figures instead."""
    if "ray.data" in sys.modules:
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False


class _LinesToLog:
    """A text stream whose lines become log records (a library's prints and progress bars)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger, self.pending = logger, ""

    def write(self, text: str) -> int:
        self.pending += text.replace("\r", "\n")
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.strip():
                self.logger.info("%s", line)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@contextmanager
def quiet_output(name: str) -> Iterator[None]:
    """Unless verbose, what a library prints while the block runs (DeepSpeed's checkpoint
    conversion: prints, a tqdm bar, its logger's console handler made on import) goes to the
    Ray log file as `ray.library.<name>` records instead of the job's console."""
    if verbose():
        yield
        return
    stream = _LinesToLog(logging.getLogger(f"ray.library.{name}"))
    with redirect_stdout(stream), redirect_stderr(stream):
        yield


def _errors_to_log(data: dict[str, Any], ignore_prefix: bool) -> None:
    """Ray's driver prints the cluster's error messages for this job ("(raylet) Task … failed …
    will be retried") on stdout even with log_to_driver off; unless verbose they go to the log."""
    for line in data.get("lines", []):
        logging.getLogger("ray.errors").warning("(%s) %s", data.get("pid"), line)


def _route_driver_errors() -> None:
    # A private Ray name, looked up by the error listener thread on every message (Ray 2.60).
    from ray._private import worker

    worker.print_to_stdstream = _errors_to_log


def ray_log_file() -> Path | None:
    """Where Ray's chatter went in this process (None before Ray started, or when verbose)."""
    return _RAY_LOG.path


__all__ = ["LOCAL_RAY_ENV", "VERBOSE_ENV", "configure_logging", "ensure_ray", "init_kwargs", "local_ray_env", "quiet_console",
           "ray_log_file", "ray_log_path", "set_verbose", "starts_local_ray", "verbose"]
