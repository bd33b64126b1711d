"""Bad input through the real `soma-ray` command, fuzzed (hypothesis): --set values, key files and
SOMA_SECRET_KEY, URLs in configs, data source paths and globs. The answer is always exit status 2
and exactly one stderr line starting `error:`: never a traceback, never the secret, and Ray never
starts (every command checks its input first).

Many examples run in process (typer's runner over `soma_ray.cli.app`); a few real processes
confirm the exit status and stderr. In both, `ray.init` is a tripwire: reaching it fails the test
instead of starting Ray (and `test_the_tripwire_fires` shows it does fire).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import ray
from hypothesis import assume, example, given
from hypothesis import strategies as st
from soma_sdk import Keypair
from typer.testing import CliRunner

from soma_ray.chain.wallet import WalletError, keypair_from_secret
from soma_ray.cli import app
from soma_ray.config import SubmitConfig
from tests.kit import CANARY, FUZZ, fuzz
from tests.test_fuzz import VALUES, field_paths

REPO = Path(__file__).resolve().parents[1]
ENV = {"SOMA_SECRET_KEY": CANARY, "COLUMNS": "200", "RAY_ADDRESS": ""}
# A submit recipe whose source does not exist, and whose key is the canary (not a valid key).
RECIPE = "kind: submit\ndata:\n  source: text\n  path: no-such-folder\nwallet:\n  secret_key: ${SOMA_SECRET_KEY}\n"
TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=80)


KEY_HINTS = (
    "error: BadKeyError: wallet.secret_key (SOMA_SECRET_KEY) .soma-ray/wallet.key does not hold a valid SOMA secret "
    "key (hex, bytes or somaprivkey1…); create one with `soma-ray wallet new` is not text (not UTF-8), so it is not a "
    "SOMA secret key; point wallet.key_file at the key (create one with `soma-ray wallet new`) is larger than 4096 bytes"
)


class RayWouldStart(BaseException):
    """Raised by the tripwire in place of `ray.init` (a BaseException, so no handler swallows it)."""


def tripwire(*args: Any, **kwargs: Any) -> None:
    raise RayWouldStart


@contextlib.contextmanager
def workdir(key_file: bytes | None = b"\xff\xfenot a key\x00") -> Iterator[Path]:
    """A fresh working directory holding the recipe and (unless None) a 0600 key file at the default path."""
    with tempfile.TemporaryDirectory() as name, contextlib.chdir(name):
        folder = Path(name)
        (folder / "submit.yaml").write_text(RECIPE)
        if key_file is not None:
            (folder / ".soma-ray").mkdir()
            key = folder / ".soma-ray" / "wallet.key"
            key.write_bytes(key_file)
            key.chmod(0o600)
        yield folder


def invoke(args: Sequence[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """(exit status, stderr) of `soma-ray ARGS` in process, with `ray.init` a tripwire."""
    # Ray looks not started even when the test session's is: every path to Ray reaches the tripwire.
    with mock.patch.object(ray, "init", tripwire), mock.patch.object(ray, "is_initialized", lambda: False):
        result = CliRunner().invoke(app, list(args), env={**ENV, **(env or {})}, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback: the test fails with it
    return result.exit_code, result.stderr


def one_error_line(status: int, stderr: str, *, secret: str = CANARY) -> str:
    assert status == 2, stderr
    assert "Traceback" not in stderr and "RAY WOULD START" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    if len(secret.strip()) >= 8:  # (unless the secret is a piece of the fixed wording, such as "somapriv")
        assert secret.strip() not in stderr or secret.strip() in KEY_HINTS, stderr
    return lines[0]


@FUZZ
@given(path=st.sampled_from(field_paths(SubmitConfig)), value=VALUES)
@example(path="data.path", value=".")  # the source resolves: the bad key is next, still before Ray
@example(path="chain.network", value="http://[")
def test_any_set_on_submit_is_one_line_before_ray(path: str, value: str) -> None:
    assume(not path.startswith("wallet."))  # the wallet's own fields: test_a_bad_key_is_one_line_before_ray
    with workdir():
        status, stderr = invoke(["--config", "submit.yaml", "--set", f"{path}={value}", "submit"])
    one_error_line(status, stderr)


def not_a_key(secret: str) -> bool:
    try:
        keypair_from_secret(secret, "fuzz")
    except WalletError:
        return True
    return False


KEY_BYTES = st.one_of(
    st.binary(max_size=200),
    TEXT.map(str.encode),
    st.binary(min_size=32, max_size=32).map(lambda b: b.hex()[:-1].encode()),  # one hex digit short
    st.binary(min_size=33, max_size=64).map(lambda b: b.hex().encode()),  # wrong length
    st.sampled_from([b"somaprivkey1", b"somaprivkey1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", b"0x" + b"z" * 64,
                     b"abandon " * 11 + b"about", b"\xef\xbb\xbf" + b"a" * 64, b"x" * 5000, b""]),
)


@FUZZ
@given(content=KEY_BYTES, where=st.sampled_from(["key file", "env"]))
@example(content=b"\xff" * 10, where="key file")  # not UTF-8
@example(content=b"k" * 100_000, where="key file")  # huge
def test_a_bad_key_is_one_line_before_ray(content: bytes, where: str) -> None:
    secret = content.decode("utf-8", "replace")
    assume(not_a_key(secret))
    if where == "env":
        assume(secret.strip() and "\x00" not in secret and secret.isprintable())
        with workdir(key_file=None):
            status, stderr = invoke(["--config", "submit.yaml", "--set", "data.path=.", "submit"],
                                    env={"SOMA_SECRET_KEY": secret})
    else:
        with workdir(key_file=content):
            status, stderr = invoke(["driver", "stop"])
    one_error_line(status, stderr, secret=secret)


URL_FIELDS = ["chain.network", "chain.rpc_url", "chain.faucet_url", "chain.admin_url", "chain.scoring_url",
              "storage.local.base_url"]


@FUZZ
@given(field=st.sampled_from(URL_FIELDS), scheme=st.sampled_from(["http", "https", "ftp", "file", "", "HTTP", "s3"]),
       host=st.sampled_from(["127.0.0.1:9", "[", "[::1", "a:b:c", "127.0.0.1:99999", "", "h\u00e9", "x y", "127.0.0.1:-1"]),
       rest=TEXT)
def test_a_bad_url_in_the_config_is_one_line_before_ray(field: str, scheme: str, host: str, rest: str) -> None:
    """A well-formed URL passes the config and the command stops at the bad key: exit 2 either way."""
    url = f"{scheme}://{host}/{rest}" if scheme else f"{host}/{rest}"
    with workdir():
        status, stderr = invoke(["--set", f"{field}={url}", "driver", "stop"])
    one_error_line(status, stderr)


# No '/' or '..': an absolute glob, or one climbing out, would walk far beyond the test's folder.
GLOBS = st.text(alphabet="[]!^-\\*?az.{}", max_size=10).filter(lambda g: ".." not in g)


@FUZZ
@given(source=st.sampled_from(["text", "jsonl", "files"]), path=st.sampled_from(["missing", "\x01", "fifo", "empty", None]),
       globs=st.lists(GLOBS, max_size=2))
@example(source="files", path="empty", globs=["*.[z-a]"])
def test_a_bad_data_source_is_one_line_before_ray(source: str, path: str | None, globs: list[str]) -> None:
    with workdir() as folder:
        os.mkfifo(folder / "fifo")
        (folder / "empty").mkdir()
        args = ["--config", "submit.yaml", "--set", f"data.source={source}", "--set", "data.path=null"]
        if path is not None:
            args += ["--set", f"data.path={path}"]
        if globs:
            args += ["--set", f"data.globs={globs!r}"]
        status, stderr = invoke([*args, "submit"])
    one_error_line(status, stderr)


def test_the_tripwire_fires() -> None:
    """With valid input the same commands do reach Ray: the tests above would notice if they did."""
    with workdir(key_file=Keypair.generate().to_secret_key().encode()), pytest.raises(RayWouldStart):
        invoke(["driver", "stop"])


# Real processes: `python -m soma_ray.cli` behind a launcher whose `ray.init` exits 99 instead.
LAUNCHER = """
import os, runpy, sys
import ray
def tripwire(*args, **kwargs):
    sys.stderr.write("RAY WOULD START\\n")
    sys.stderr.flush()
    os._exit(99)
ray.init = tripwire
sys.argv = ["soma-ray", *sys.argv[1:]]
runpy.run_module("soma_ray.cli", run_name="__main__", alter_sys=True)
"""


def soma_ray(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LAUNCHER, *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO), **ENV, **(env or {})},
    )


@pytest.mark.parametrize(("args", "env", "expected"), [
    (["--set", "chain.sim.genesis_targets=-1", "driver", "stop"], {}, "error: (defaults): chain.sim.genesis_targets: "),
    (["--config", "submit.yaml", "submit"], {}, "error: DataError: no-such-folder: no such file or directory"),
    (["--config", "submit.yaml", "--set", "data.path=.", "--set", "data.globs=['*.[z-a]']", "submit"], {},
     "error: DataError: glob '*.[z-a]': "),
    (["--config", "submit.yaml", "--set", "data.path=.", "submit"], {"SOMA_SECRET_KEY": CANARY},
     "error: BadKeyError: wallet.secret_key (SOMA_SECRET_KEY) does not hold a valid SOMA secret key"),
    (["driver", "stop"], {}, "error: BadKeyError: .soma-ray/wallet.key is not text (not UTF-8)"),
    (["--chain", "http://[", "status"], {}, "error: (defaults): chain.network: "),
    (["--set", "storage.local.base_url=ftp://x", "driver", "stop"], {}, "error: (defaults): storage.local.base_url: "),
], ids=["set", "data-path", "glob", "env-key", "key-file", "chain-url", "storage-url"])
def test_the_real_command_exits_2_with_one_line(args: list[str], env: dict[str, str], expected: str) -> None:
    with workdir() as folder:
        proc = soma_ray(folder, *args, env=env)
    assert proc.returncode == 2, proc.stderr
    assert one_error_line(proc.returncode, proc.stderr).startswith(expected), proc.stderr
    assert CANARY not in proc.stdout


def test_the_real_tripwire_fires() -> None:
    with workdir(key_file=Keypair.generate().to_secret_key().encode()) as folder:
        proc = soma_ray(folder, "driver", "stop")
    assert proc.returncode == 99 and "RAY WOULD START" in proc.stderr, proc.stderr


@fuzz(0.02)
@given(value=VALUES.filter(lambda v: "\x00" not in v and not any(0xD800 <= ord(c) <= 0xDFFF for c in v)))
def test_any_set_value_through_the_real_command(value: str) -> None:
    with workdir() as folder:
        proc = soma_ray(folder, "--set", f"chain.sim.genesis_targets={value}", "driver", "stop")
    one_error_line(proc.returncode, proc.stderr)
