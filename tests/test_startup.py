"""Start-up stays light: `soma-ray --help`, loading any recipe and `soma-ray status` on the
embedded network import neither torch nor Ray (nor the other heavy libraries); each command
imports them only when it runs. Checked by the set of modules loaded, in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# grpc: the served network (`soma-ray localnet`) loads it, and compiles its messages, only when it serves.
HEAVY = {"torch", "ray", "deepspeed", "datasets", "boto3", "soma_models", "pyarrow", "grpc", "grpc_tools"}

# Runs `code` in a fresh interpreter, then prints which top-level modules it loaded.
PROBE = """
import json, sys
{code}
print(json.dumps(sorted({{name.partition(".")[0] for name in sys.modules}})))
"""


def loaded_after(code: str, cwd: Path) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(code=code)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def run_cli(*args: str) -> str:
    return f"""
from soma_ray.cli import app
try:
    app({list(args)!r})
except SystemExit as exit:
    assert not exit.code, exit.code
"""


def test_help_is_light(tmp_path: Path) -> None:
    loaded = loaded_after(run_cli("--help"), tmp_path)
    assert "soma_ray" in loaded and "typer" in loaded  # the probe ran the real command
    assert not loaded & HEAVY


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_loading_a_recipe_is_light(recipe: str, tmp_path: Path) -> None:
    code = f"""
from pathlib import Path
from soma_ray.config import load_job_config
config = load_job_config(Path({str(REPO / "configs" / recipe)!r}), [], env={{name: "x" for name in ("SOMA_SECRET_KEY", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "HF_TOKEN")}})
assert config.kind
"""
    loaded = loaded_after(code, tmp_path)
    assert "pydantic" in loaded
    assert not loaded & HEAVY


def test_status_on_the_embedded_network_is_light(tmp_path: Path) -> None:
    # The network is made first (genesis draws its model weights with torch, once).
    loaded_after(run_cli("status"), tmp_path)
    assert (tmp_path / ".soma-ray" / "sim").exists()
    loaded = loaded_after(run_cli("status"), tmp_path)
    assert "soma_sdk" in loaded  # it did talk to the chain layer
    assert not loaded & HEAVY
