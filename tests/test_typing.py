"""The whole package type-checks under `mypy --strict` (SdkChain against soma-sdk's stubs)."""

from __future__ import annotations

from pathlib import Path

from mypy import api

REPO = Path(__file__).resolve().parents[1]


def test_package_passes_strict_mypy() -> None:
    stdout, stderr, status = api.run(
        ["--config-file", str(REPO / "pyproject.toml"), str(REPO / "soma_ray"), str(REPO / "jobs")]
    )
    assert status == 0, stdout + stderr
