"""`soma-ray doctor` end to end in real processes: the embedded network, the moto S3 server (real
HTTP on 127.0.0.1), a deliberately broken `.env`. Ray is never started: RAY_TMPDIR points at an
empty folder and RAY_ADDRESS is unset, so the doctor finds no cluster and says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kit import boto_client

REPO = Path(__file__).resolve().parents[2]
BUCKET = "doctor-bucket"
S3_KEY_ID = "doctor-key-" + os.urandom(6).hex()  # made per run: no credential-like literal in the tree
S3_SECRET = os.urandom(16).hex()
HF_TOKEN = "hf_" + os.urandom(12).hex()
SMALL = ["--set", "chain.sim.genesis_targets=5", "--set", "chain.sim.params.target_initial_targets_per_epoch=5"]
# submit.yaml's local store swapped for the bucket, its settings from the environment as in the shipped S3 recipes
S3_RECIPE = """kind: submit
storage:
  kind: s3
  s3:
    bucket: ${S3_BUCKET}
    endpoint_url: ${S3_ENDPOINT_URL:-}
    public_url: ${S3_PUBLIC_URL:-}
    access_key_id: ${S3_ACCESS_KEY_ID}
    secret_access_key: ${S3_SECRET_ACCESS_KEY}
data:
  source: files
  path: .
"""


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "S3_", "AWS_", "HF_TOKEN"))}
    return subprocess.run(
        [sys.executable, "-m", "soma_ray.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=180,
        env={**base, "PYTHONPATH": str(REPO), "COLUMNS": "250", "RAY_TMPDIR": str(cwd / "no-ray"), **(env or {})},
    )


def lines(proc: subprocess.CompletedProcess[str], name: str) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line[6:].startswith(name + " ")]


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    client = boto_client("s3", moto_endpoint)
    if BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=BUCKET)
    return moto_endpoint


def s3_env(endpoint: str, public_url: str = "") -> dict[str, str]:
    return {"S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": endpoint, "S3_PUBLIC_URL": public_url,
            "S3_ACCESS_KEY_ID": S3_KEY_ID, "S3_SECRET_ACCESS_KEY": S3_SECRET, "HF_TOKEN": HF_TOKEN}


def objects(endpoint: str) -> list[str]:
    listed = boto_client("s3", endpoint).list_objects_v2(Bucket=BUCKET, Prefix="soma-ray-doctor/")
    return [o["Key"] for o in listed.get("Contents", [])]


def test_a_ready_setup_passes_and_no_secret_is_printed(tmp_path: Path, bucket: str) -> None:
    assert run(tmp_path, *SMALL, "wallet", "new").returncode == 0
    assert run(tmp_path, *SMALL, "sim", "faucet").returncode == 0
    (tmp_path / "s3.yaml").write_text(S3_RECIPE)
    env = s3_env(bucket)

    proc = run(tmp_path, "doctor", "--config", "s3.yaml", *SMALL, env=env)  # global options after the command

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "ready for kind submit"
    assert not [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert lines(proc, "wallet")[0].startswith("ok    wallet          64-hex-digit secret key from .soma-ray/wallet.key")
    assert "2.000000000 SOMA" in lines(proc, "balance")[0]
    assert "the embedded network at .soma-ray/sim: epoch 0" in lines(proc, "chain")[0]
    assert lines(proc, "s3 public read")[0].startswith("ok")
    assert lines(proc, "s3 delete")[0].startswith("ok")
    assert objects(bucket) == []  # the test object is gone
    assert "no Ray cluster is running" in lines(proc, "ray")[0]
    key = (tmp_path / ".soma-ray" / "wallet.key").read_text().strip()
    for secret in (key, S3_SECRET, S3_KEY_ID, HF_TOKEN):
        assert secret not in proc.stdout + proc.stderr


def test_an_unfunded_wallet_fails_with_the_fix(tmp_path: Path) -> None:
    assert run(tmp_path, *SMALL, "wallet", "new").returncode == 0
    assert run(tmp_path, *SMALL, "status").returncode == 0
    proc = run(tmp_path, *SMALL, "-c", str(REPO / "configs" / "submit.yaml"), "doctor")
    assert proc.returncode == 1
    assert lines(proc, "balance")[0].startswith("FAIL") and "fund it with `soma-ray sim faucet`" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "1 problem(s) to fix for kind submit"


def test_a_public_url_that_serves_nothing_fails_and_the_object_is_still_deleted(tmp_path: Path, bucket: str) -> None:
    (tmp_path / "s3.yaml").write_text(S3_RECIPE)
    proc = run(tmp_path, "doctor", "-c", "s3.yaml", "--skip", "wallet", "--skip", "chain",
               env=s3_env(bucket, public_url=f"{bucket}/another-bucket"))
    assert proc.returncode == 1, proc.stdout
    assert lines(proc, "s3 write")[0].startswith("ok")
    read = lines(proc, "s3 public read")[0]
    assert read.startswith("FAIL") and "set S3_PUBLIC_URL to its public domain" in read
    assert lines(proc, "s3 delete")[0].startswith("ok")
    assert objects(bucket) == []
    assert S3_SECRET not in proc.stdout + proc.stderr


def test_a_broken_dotenv_gets_one_fix_per_line_and_exit_1(tmp_path: Path) -> None:
    wallet_secret = "not-a-key-but-secret-0123456789"
    (tmp_path / ".env").write_text(
        "S3_BUCKET=my-bucket\n"
        "S3_ENDPOINT_URL=0123abcd.r2.cloudflarestorage.com\n"           # no https://
        "S3_PUBLIC_URL=https://0123abcd.r2.cloudflarestorage.com/my-bucket\n"  # the API endpoint, not public
        f"S3_ACCESS_KEY_ID={S3_KEY_ID}\n"
        f"S3_SECRET_ACCESS_KEY={S3_SECRET}\n"
        f"SOMA_SECRET_KEY={wallet_secret}\n"
        "this line is not an assignment\n"
        f"HF_TOKEN={HF_TOKEN}\n"
    )
    (tmp_path / ".env").chmod(0o644)
    proc = run(tmp_path, "doctor", "--config", str(REPO / "configs" / "submit-testnet.yaml"))

    assert proc.returncode == 1
    env_lines = lines(proc, ".env")
    assert any(l.startswith("FAIL") and "S3_ENDPOINT_URL (.env line 2)" in l and
               "write it as https://0123abcd.r2.cloudflarestorage.com" in l for l in env_lines), env_lines
    assert any(l.startswith("FAIL") and "S3_PUBLIC_URL (.env line 3)" in l and "serves no public reads" in l
               for l in env_lines), env_lines
    assert any("line 7 is not KEY=value" in l for l in env_lines)
    assert any("chmod 600 .env" in l for l in env_lines)
    assert lines(proc, "recipe")[0].startswith("FAIL")
    assert "storage.s3.endpoint_url" in lines(proc, "recipe")[0]
    assert "python-dotenv" not in proc.stderr  # the unparsable line is reported once, by the doctor
    for secret in (S3_SECRET, S3_KEY_ID, HF_TOKEN, wallet_secret):
        assert secret not in proc.stdout + proc.stderr


def test_a_bad_key_on_testnet_fails_without_showing_it(tmp_path: Path) -> None:
    wallet_secret = "zz" * 32
    proc = run(tmp_path, "doctor", "-c", str(REPO / "configs" / "testnet.yaml"), "--skip", "chain", "--skip", "storage",
               env={"SOMA_SECRET_KEY": wallet_secret, **s3_env("https://s3.example.invalid")})
    assert proc.returncode == 0  # kind run makes its own wallet: a bad key is a warning there
    assert lines(proc, "wallet")[0].startswith("warn")
    assert wallet_secret not in proc.stdout + proc.stderr

    submit = run(tmp_path, "doctor", "-c", str(REPO / "configs" / "submit-testnet.yaml"), "--skip", "chain",
                 "--skip", "storage", "--skip", "hf", "--skip", "ray", "--skip", "torch",
                 env={"SOMA_SECRET_KEY": wallet_secret, **s3_env("https://s3.example.invalid")})
    assert submit.returncode == 1
    wallet = lines(submit, "wallet")[0]
    assert wallet.startswith("FAIL") and "wallet.secret_key (SOMA_SECRET_KEY) is not a SOMA key" in wallet
    assert wallet_secret not in submit.stdout + submit.stderr


def test_an_unknown_skip_is_one_line(tmp_path: Path) -> None:
    proc = run(tmp_path, "doctor", "--skip", "rayy")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --skip rayy: no such check; use one of python, packages, env, recipe, torch, " \
        "ray, wallet, chain, storage, hf, disk, ports"
