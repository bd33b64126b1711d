"""The chaos soak at CI size (no Ray): every fault knob on, two submitter jobs and a training
commit round through one driver over soma-sdk, the invariants checked after every epoch and at
the end (`soma_ray.chaos.soak` raises `InvariantBroken` otherwise). The large run is
`bench/chaos.py --seed 1 --faults 200 --epochs 8` (docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

from soma_ray.chaos import soak


async def test_a_small_soak_keeps_every_invariant(tmp_path: Path) -> None:
    report = await soak(tmp_path, seed=3, faults=25, epochs=6)
    assert report.epochs >= 6
    assert report.faults_injected >= 25
    assert len(report.faults) >= 3, report.faults  # several kinds, not one
    assert report.reconciled >= 1 and report.uncertain >= 1
    assert report.commits >= 1 and report.reveals == report.commits  # every commit revealed
    assert report.submissions >= 1 and report.claims >= 1
    assert report.invariants_checked > 0
