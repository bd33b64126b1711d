"""How soma-ray joins or starts Ray, without starting it: the environment of a local Ray of its
own (no auth token, no usage stats, loopback), the `ray.init` arguments, `--verbose` /
`SOMA_RAY_VERBOSE`, and where Ray's chatter goes when not verbose."""

from __future__ import annotations

import io
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soma_ray import runtime
from soma_ray.job import job_parser
from soma_ray.runtime import (
    LOCAL_RAY_ENV,
    VERBOSE_ENV,
    init_kwargs,
    local_ray_env,
    quiet_console,
    starts_local_ray,
    verbose,
)


@pytest.fixture
def no_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VERBOSE_ENV, raising=False)


def test_a_local_ray_of_our_own_writes_no_token_sends_no_stats_and_binds_loopback() -> None:
    assert local_ray_env({}) == {
        "RAY_AUTH_MODE": "disabled",  # else ray.init() writes ~/.ray/auth_token (design.md)
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }
    # What the user set stays theirs (a token-auth cluster of their own, say).
    assert local_ray_env({"RAY_AUTH_MODE": "token"}) == {k: v for k, v in LOCAL_RAY_ENV.items() if k != "RAY_AUTH_MODE"}


def test_workers_output_reaches_the_console_only_when_verbose() -> None:
    assert init_kwargs(log_to_driver=None, loud=False, environ={}) == {"address": None, "log_to_driver": False}
    assert init_kwargs(log_to_driver=None, loud=True, environ={})["log_to_driver"] is True
    assert init_kwargs(log_to_driver=False, loud=True, environ={})["log_to_driver"] is False  # the caller's word wins
    assert init_kwargs(log_to_driver=None, loud=False, environ={"RAY_ADDRESS": "10.0.0.1:6379"})["address"] == "10.0.0.1:6379"


def test_ray_start_cluster_or_address_is_joined_else_a_local_one_starts(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # no `ray start` cluster recorded there
    assert starts_local_ray({})
    assert not starts_local_ray({"RAY_ADDRESS": "10.0.0.1:6379"})
    assert starts_local_ray({"RAY_ADDRESS": "local"})


@pytest.mark.parametrize(("value", "on"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_the_verbose_variable(value: str, on: bool) -> None:
    assert verbose({VERBOSE_ENV: value}) is on
    assert verbose({}) is False


def test_the_job_flag_sets_verbose(no_verbose: None) -> None:
    args = job_parser(None).parse_args(["--config", "x.yaml"])
    assert not args.verbose and not verbose()
    args = job_parser(None).parse_args(["--verbose", "--config", "x.yaml"])
    assert args.verbose and verbose() and os.environ[VERBOSE_ENV] == "1"
    os.environ.pop(VERBOSE_ENV)


def test_the_cli_flag_sets_verbose(no_verbose: None, tmp_path: Path) -> None:
    from soma_ray.cli import app

    CliRunner().invoke(app, ["--set", f"chain.sim.path={tmp_path / 'sim'}", "wallet", "--help"])
    assert not verbose()
    result = CliRunner().invoke(app, ["--verbose", "--set", f"chain.sim.path={tmp_path / 'sim'}", "wallet", "show"])
    assert verbose(), result.output
    os.environ.pop(VERBOSE_ENV)


@pytest.fixture
def loggers() -> Iterator[None]:
    """Put back the handlers and flags quiet_console changes."""
    names = ["ray", "ray.data", "ray.soma_test_child", "py.warnings", "soma_ray"]
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate, logging.getLogger(n).level)
             for n in names}
    # An earlier quiet_console of the session left warnings captured; captured again inside the
    # test runner's own warning recorder it would be a no-op, so start from "not captured".
    logging.captureWarnings(False)
    yield
    logging.captureWarnings(False)
    for n, (handlers, propagate, level) in saved.items():
        logger = logging.getLogger(n)
        logger.handlers[:] = handlers
        logger.propagate, logger.level = propagate, level


def test_quiet_sends_ray_chatter_and_warnings_to_the_log_not_the_console(loggers: None) -> None:
    console, log = io.StringIO(), io.StringIO()
    for name in ("ray", "ray.data"):
        logging.getLogger(name).handlers[:] = [logging.StreamHandler(console)]  # as Ray configures them
        logging.getLogger(name).propagate = False
    logging.getLogger("ray").setLevel(logging.INFO)
    logging.getLogger("ray.data").setLevel(logging.INFO)
    quiet_console(logging.StreamHandler(log))
    logging.getLogger("ray").info("Started a local Ray instance.")
    logging.getLogger("ray.data").info("Progress bars disabled.")
    logging.getLogger("ray.soma_test_child").info("Reporting training result 1")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("torch.cuda.amp is deprecated", FutureWarning, stacklevel=1)
    logging.getLogger("soma_ray.submit").info("near miss: 0.01 from target t1")
    assert console.getvalue() == ""
    for line in ("Started a local Ray instance.", "Progress bars disabled.", "Reporting training result 1",
                 "FutureWarning: torch.cuda.amp is deprecated", "near miss"):
        assert line in log.getvalue()


def test_quiet_keeps_soma_rays_warnings_on_stderr(loggers: None, capsys: pytest.CaptureFixture[str]) -> None:
    quiet_console(logging.StreamHandler(io.StringIO()))
    logging.getLogger("soma_ray.driver").warning("the epoch spend cap is reached")
    logging.getLogger("soma_ray.driver").info("routine")
    err = capsys.readouterr().err
    assert "the epoch spend cap is reached" in err and "routine" not in err


def test_records_before_rays_session_is_known_are_written_once_it_is(tmp_path: Path) -> None:
    handler = runtime._DeferredFile()
    logger = logging.getLogger("soma_ray.test.deferred")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("before ray.init")
        handler.open(tmp_path / "logs" / "soma-ray-1.log")
        logger.warning("after ray.init")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = (tmp_path / "logs" / "soma-ray-1.log").read_text()
    assert "before ray.init" in text and "after ray.init" in text
