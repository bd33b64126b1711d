"""Free disk space where the scorer caches model weights."""

from __future__ import annotations

import shutil
from pathlib import Path

from soma_ray.doctor.result import Check, fail, ok, warn
from soma_ray.protocol.architecture import ArchitectureSettings

GB = 1e9
ROOMY_MODELS = 4  # below room for this many models, the cache evicts often


def existing_parent(path: Path) -> Path:
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _size(n: int) -> str:
    return f"{n / GB:.2f} GB" if n >= GB / 10 else f"{n / 1e6:.2f} MB"


def disk_check(cache_dir: Path, architecture: ArchitectureSettings, *, free_bytes: int | None = None) -> Check:
    free = shutil.disk_usage(existing_parent(cache_dir)).free if free_bytes is None else free_bytes
    per_model = max(architecture.approx_weights_bytes(), 1)
    room = free // per_model
    line = f"{free / GB:.1f} GB free at {cache_dir}: room for ~{room:,} model(s) of {_size(per_model)}"
    if room < 1:
        return fail("disk", f"{line}; free space there or point the cache (scoring.cache_dir) at a larger disk")
    if room < ROOMY_MODELS:
        return warn("disk", f"{line}; a plan with more models re-downloads them, give it more space")
    return ok("disk", line)
