"""FLOPs/MFU accounting, the learning-rate schedule and the DeepSpeed config."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from soma_models.v1.torch import Model, ModelConfig

from soma_ray.training.config import TrainingSection
from soma_ray.training.engine import deepspeed_config, lr_factor
from soma_ray.training.flops import (
    forward_flops_per_token,
    mfu,
    parameter_count,
    peak_tflops,
    training_flops_per_token,
)


def test_parameter_count_matches_v1_and_soma_models() -> None:
    assert parameter_count(2048, 8192, 24) == 1_209_684_232  # protocol.md §2.1
    model = Model(ModelConfig(dropout_rate=0.0, embedding_dim=32, pwff_hidden_dim=64, num_layers=3, num_heads=2))
    assert parameter_count(32, 64, 3) == sum(p.numel() for p in model.parameters())


def test_mfu_of_the_issue_target() -> None:
    """45% MFU on an H100 in bf16 is about 57k tokens/s for the full V1 model."""
    flops = training_flops_per_token(2048, 8192, 24)
    peak = peak_tflops("NVIDIA H100 80GB HBM3", "bf16")
    assert peak == 989.0
    assert mfu(57_000, flops, 1, peak) == pytest.approx(0.45, abs=0.01)
    assert peak_tflops("NVIDIA L40S", "bf16") == 362.0 and peak_tflops("NVIDIA L4", "bf16") == 121.0
    assert peak_tflops("cpu", "float32") is None and mfu(1000, flops, 1, None) is None


def test_forward_flops_of_v1_and_training_is_three_forwards() -> None:
    """Scoring V1 costs 2.62 GFLOP per token (2·N matmuls + 4·L·D·S attention); training 3×."""
    forward = forward_flops_per_token(2048, 8192, 24)
    n = parameter_count(2048, 8192, 24) - 264 * 2048  # the embedding lookup is no matmul
    assert forward == 2 * n + 4 * 24 * 2048 * 1024
    assert forward == pytest.approx(2.62e9, rel=1e-3)
    assert training_flops_per_token(2048, 8192, 24) == 3 * forward


def test_warmup_then_cosine_to_the_floor() -> None:
    factors = [lr_factor(s, 10, 110, 0.1) for s in range(111)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and factors[60] == pytest.approx(0.55)
    assert factors[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(factors[10:]))


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_deepspeed_config_follows_the_section(stage: int) -> None:
    training = TrainingSection(zero_stage=stage, precision="bf16", micro_batch=8, grad_accum=4, grad_clip=0.5)
    ds = deepspeed_config(training)
    assert ds["zero_optimization"]["stage"] == stage
    assert ds["bf16"] == {"enabled": True}
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (8, 4)
    assert ds["gradient_clipping"] == 0.5 and ds["zero_allow_untested_optimizer"] is True


def test_a_training_report_becomes_the_displays_figures() -> None:
    from soma_ray.training.progress import figures_of

    report = {"step": 20, "loss": 5.25, "ce": 5.2, "sigreg": 2.5, "lr": 1e-3, "tokens_per_second": 2048.0,
              "mfu": 0.25, "heldout_loss": 5.4}
    shown = figures_of(report, total=30, eta_s=40.0)
    assert shown.line() == "training: step 20/30 | loss 5.2500 | held-out 5.4000 | 2,048 tokens/s | MFU 25.0% | ETA 40s"
    no_eval = figures_of({k: v for k, v in report.items() if k not in ("heldout_loss", "mfu")}, total=30, eta_s=None)
    assert no_eval.heldout_loss is None and no_eval.mfu is None


def test_a_stale_extension_build_lock_is_removed_and_a_fresh_one_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process killed while DeepSpeed built its CPU shared-memory op leaves torch's build lock,
    which names no owner: every later start would wait on it forever (seen here after killing a
    test run mid-start). One older than a build can take is removed; a fresh one is another
    worker building right now and stays."""
    import os
    import time

    from soma_ray.training.engine import SHM_OP, STALE_BUILD_LOCK_S, clear_stale_build_locks

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    stale, fresh = tmp_path / SHM_OP / "lock", tmp_path / "other_op" / "lock"
    for lock in (stale, fresh):
        lock.parent.mkdir(parents=True)
        lock.touch()
    old = time.time() - STALE_BUILD_LOCK_S - 60
    os.utime(stale, (old, old))
    os.utime(fresh, (old, old))
    assert clear_stale_build_locks() == [stale] and not stale.exists()
    assert fresh.exists()  # another op's lock is not ours to judge
    stale.touch()  # a build that started a moment ago
    assert clear_stale_build_locks() == [] and stale.exists()
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR")  # torch's default root: <cache>/py311_cpu/<op>/lock
    import torch.utils.cpp_extension as extension

    monkeypatch.setattr(extension, "get_default_build_root", lambda: str(tmp_path / "cache"))
    nested = tmp_path / "cache" / "py311_cpu" / SHM_OP / "lock"
    nested.parent.mkdir(parents=True)
    nested.touch()
    os.utime(nested, (old, old))
    assert clear_stale_build_locks() == [nested]
