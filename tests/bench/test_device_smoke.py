"""bench/device.py, the prepared GPU benchmark, keeps working: its `--smoke` run on CPU (the same
code on a tiny model) completes every section and writes one JSON document."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_device_benchmark_smoke_runs_every_section(tmp_path: Path) -> None:
    out = tmp_path / "device.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "device.py"), "--smoke", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    doc = json.loads(out.read_text())
    assert json.loads(done.stdout) == doc  # the same document on stdout, printed last
    sections = doc["sections"]
    assert set(sections) == {"environment", "ceilings", "exact", "reference", "prefilter", "official", "training"}
    assert not [name for name, section in sections.items() if "error" in section or "skipped" in section]
    exact, prefilter = sections["exact"], sections["prefilter"]
    assert exact["rows"] >= 24 and exact["tokens_per_s"] > 0 and prefilter["tokens_per_s"] > 0
    assert exact["best"]["precision"] == "float32" and prefilter["best"]["precision"] == "bf16"
    assert {v["rows_per_forward"] for v in exact["variants"]} == {16, 4}
    # Every sample of the reference set agrees with soma-models' float32 forward within the audit tolerance.
    reference = sections["reference"]
    assert reference["exact_within_audit"] and len(reference["samples"]) == 2
    assert all(s["exact_loss_rel"] < 1e-4 for s in reference["samples"])  # CPU float32: no TF32 rounding
    official = sections["official"]
    assert official["requests"] == 2 and official["exact_over_official"] > 0
    assert set(official["stage_seconds_per_request"]) == {"read", "verify", "decrypt", "build", "to_device"}
    training = sections["training"]
    assert [v["activation_checkpointing"] for v in training["variants"]] == [False, True]
    assert all(v["tokens_per_s"] > 0 for v in training["variants"])
    assert doc["summary"]["figures"]["exact_within_audit"] is True
