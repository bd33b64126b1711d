"""Byte sources for scoring and training: local files, text, JSONL, Hugging Face streaming
datasets and The Stack v2, behind one interface (an iterable of `bytes`), with size,
encoding, dedup and limit filters. `build_source(DataConfig(...))` is the entry point.

The sources load lazily, so that the config and filters import without `datasets`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from soma_ray.data.config import DETERMINISTIC_MAX_BYTES, HARD_MAX_BYTES, DataConfig
from soma_ray.data.errors import DataError
from soma_ray.data.filters import (
    FilterStats,
    apply_filters,
    dedup,
    digest,
    limit,
    size_bounds,
    skip_empty,
    utf8_only,
)

if TYPE_CHECKING:
    from soma_ray.data.hf import HuggingFaceSource
    from soma_ray.data.local import JsonlSource, LocalFilesSource, TextSource, find_files
    from soma_ray.data.sources import ByteSource, build_source, check_source, make_source
    from soma_ray.data.stack_v2 import StackV2Source

_LAZY = {
    "HuggingFaceSource": "hf",
    "JsonlSource": "local", "LocalFilesSource": "local", "TextSource": "local", "find_files": "local",
    "ByteSource": "sources", "build_source": "sources", "check_source": "sources", "make_source": "sources",
    "StackV2Source": "stack_v2",
}
__all__ = [
    "DETERMINISTIC_MAX_BYTES", "HARD_MAX_BYTES", "ByteSource", "DataConfig", "DataError", "FilterStats",
    "HuggingFaceSource", "JsonlSource", "LocalFilesSource", "StackV2Source", "TextSource", "apply_filters",
    "build_source", "check_source", "dedup", "digest", "find_files", "limit", "make_source", "size_bounds", "skip_empty",
    "utf8_only",
]


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
