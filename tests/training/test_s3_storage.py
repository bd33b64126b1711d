"""Checkpoints in S3 (a real S3-compatible server on 127.0.0.1): a `jobs/train.py` run stores its
checkpoints under s3://, exports its best one from there, and `soma-ray export` reads an s3://
checkpoint back. Credentials reach the job through its environment only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from soma_ray.driver.artifacts import Artifacts
from tests.kit import boto_client
from tests.training.kit import tiny_config, write_recipe

REPO = Path(__file__).resolve().parents[2]
BUCKET = "soma-ray-train"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing-key-id", "AWS_SECRET_ACCESS_KEY": "testing-secret-value"}


@pytest.fixture
def s3_endpoint(moto_endpoint: str) -> str:
    boto_client("s3", moto_endpoint, CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"]).create_bucket(
        Bucket=BUCKET
    )
    return moto_endpoint


@pytest.mark.timeout(600)
def test_checkpoints_in_s3_then_export_from_s3(s3_endpoint: str, tmp_path: Path) -> None:
    storage = f"s3://{BUCKET}/runs?endpoint_override={s3_endpoint}&region=us-east-1"
    config = tiny_config(tmp_path, name="s3-run", storage_path=storage, max_steps=4, checkpoint_every=2, eval_every=2)
    recipe = write_recipe(config, tmp_path / "train.yaml")
    env = {**os.environ, **CREDENTIALS, "AWS_EC2_METADATA_DISABLED": "true"}
    env.pop("RAY_ADDRESS", None)  # its own local Ray, started with these credentials in its environment
    job = subprocess.run(
        [sys.executable, "jobs/train.py", "--config", str(recipe)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=540, check=False,
    )
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in job.stdout + job.stderr

    s3 = boto_client("s3", s3_endpoint, CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/s3-run/")["Contents"]]
    checkpoints = sorted({k.split("/")[2] for k in keys if k.count("/") > 2 and k.split("/")[2].startswith("checkpoint_")})
    assert len(checkpoints) == 2 and any(k.endswith("deepspeed/zero_pp_rank_1_mp_rank_00_optim_states.pt") for k in keys)
    # The run exported its best checkpoint, downloaded from S3.
    recorded = Artifacts.read(next((tmp_path / "artifacts" / "s3-run").glob("step-*/manifest.json")))

    checkpoint = f"s3://{BUCKET}/runs/s3-run/{checkpoints[-1]}?endpoint_override={s3_endpoint}&region=us-east-1"
    export = subprocess.run(
        [sys.executable, "-m", "soma_ray.cli", "--config", str(recipe), "export", checkpoint, "--out",
         str(tmp_path / "again")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert export.returncode == 0, export.stderr[-3000:]
    again = Artifacts.read(next((tmp_path / "again" / "s3-run").glob("step-00000004/manifest.json")))
    assert again.step == 4
    if recorded.step == 4:
        assert again.weights_blake2b == recorded.weights_blake2b
