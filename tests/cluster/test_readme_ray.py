"""The README as a new user follows it, on one machine (issue 16): the main command, its output
captured as under `ray job submit` (not a terminal), then the "Running on Ray" steps pasted after it.

- The main command's output is soma-ray's, not Ray's: the steps, a few figures and the ledger, no
  Ray progress block, no Ray Train result dictionaries, no token or object-store chatter, no
  Python warnings, and at most 50 lines.
- It leaves no `~/.ray/auth_token` (HOME is a temp folder: the real ~/.ray is never touched), so
  the README's `ray start --head` + `ray job submit` work with no authentication error.

Three changes to the pasted steps, none about authentication: the head gets free ports (6379/8265
may belong to another cluster here), the cluster is stopped by stopping the processes this test
started (`ray stop` stops every Ray on the machine), and the job's cycle folder is in the test's
temp folder rather than the checkout's `.soma-ray/`.
`RAY_TMPDIR` keeps both runs away from any other Ray of the machine, as on a fresh one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.cluster.kit import free_port, session_processes

REPO = Path(__file__).resolve().parents[2]
NOISE = [  # what Ray printed into the main command's output before issue 16
    r"Running Dataset", r"Operator \d+", r"\bmap_batches\b.*row/s", r"Reporting training result",
    r"Token authentication", r"authentication token", r"object store", r"FutureWarning",
    r"DeprecationWarning", r"UserWarning", r"\(pid=\d+", r"pid=\d+\)", r"Started a local Ray instance",
    r"View detailed results here", r"Tip: ",
    # and what the first version of the display still let through
    r"core_worker\.cc", r"\(raylet\)", r"real_accelerator", r"zero checkpoint", r"Loading checkpoint shards",
    r"Reconstructed fp32",
]


def readme_ray_steps() -> str:
    """The bash block of the README's "Running on Ray" section, verbatim."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Running on Ray", 1)[1]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def user_env(home: Path, ray_tmp: Path) -> dict[str, str]:
    """A new user's shell: no RAY_* settings (the test session's RAY_AUTH_MODE=disabled is dropped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "SOMA_RAY_VERBOSE"}
    return {**env, "HOME": str(home), "RAY_TMPDIR": str(ray_tmp),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}


def test_the_readme_steps_pasted_after_the_main_command(tmp_path: Path, no_session_ray: None) -> None:
    home = tmp_path / "home"
    home.mkdir()
    ray_tmp = Path(tempfile.mkdtemp(prefix="rdm-", dir="/tmp"))  # short: Ray's socket paths live under it
    env = user_env(home, ray_tmp)
    blob_url = f"http://127.0.0.1:{free_port()}"

    # 1. The main command (its job, from the README), output into a pipe.
    main = subprocess.run(
        [sys.executable, "jobs/cycle.py", "--config", "configs/cycle.yaml",
         "--set", f"cycle.folder={tmp_path / 'cycle'}", "--set", f"chain.sim.blob_url={blob_url}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    printed = main.stdout + main.stderr
    assert main.returncode == 0, printed[-5000:]
    for step in range(1, 8):
        assert f"== step {step}/7" in main.stdout
    assert "ledger of this cycle" in main.stdout and "unexplained" in main.stdout
    noise = [line for line in printed.splitlines() if any(re.search(p, line) for p in NOISE)]
    assert noise == [], noise
    assert len(printed.splitlines()) <= 45, printed  # one screen (a long temp path wraps at 80 columns)
    assert not (home / ".ray" / "auth_token").exists()  # the trap of issue 16

    # 2. The README's "Running on Ray" steps, pasted in a shell after it.
    steps = readme_ray_steps()
    assert "ray start --head" in steps and "ray job submit" in steps and "ray stop" in steps
    gcs, dashboard = free_port(), free_port()
    script = (steps
              .replace("source .venv/bin/activate", f"source {Path(sys.executable).parent / 'activate'}")
              .replace("ray start --head", f"ray start --head --port={gcs} --dashboard-port={dashboard} "
                       f"--ray-client-server-port={free_port()} --dashboard-agent-listen-port={free_port()} "
                       f"--metrics-export-port={free_port()}")
              .replace("ray stop", "true  # stopped below, by process session")
              .replace("$PWD/.soma-ray/cycle", str(tmp_path / "cycle-job")))
    script = f"set -e\n{script}\n"
    shell = subprocess.Popen(["bash", "-c", script], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = shell.communicate(timeout=900)
    finally:
        _stop_session(shell.pid)
    assert shell.returncode == 0, output[-5000:]
    # Ray's own notice that token auth is off is fine; an authentication failure is the trap
    assert not re.search(r"AuthenticationError|authentication (failed|error|required)|unauthenticated|invalid token",
                         output, re.IGNORECASE), output[-5000:]
    assert "succeeded" in output and "== step 7/7" in output, output[-5000:]
    assert not (home / ".ray" / "auth_token").exists()


def _stop_session(sid: int) -> None:
    """Stop what the pasted steps started (the head's processes), and nothing else."""
    import signal
    import time

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in session_processes({sid}):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while session_processes({sid}) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert not session_processes({sid}), session_processes({sid})


pytestmark = [pytest.mark.slow, pytest.mark.timeout(2000)]
