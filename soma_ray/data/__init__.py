"""Byte sources for scoring and training: local files, text, JSONL, Hugging Face streaming
datasets and The Stack v2, behind one interface (an iterable of `bytes`), with size,
encoding, dedup and limit filters. `build_source(DataConfig(...))` is the entry point.
"""

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
from soma_ray.data.hf import HuggingFaceSource
from soma_ray.data.local import JsonlSource, LocalFilesSource, TextSource, find_files
from soma_ray.data.sources import ByteSource, build_source, make_source
from soma_ray.data.stack_v2 import StackV2Source

__all__ = [
    "DETERMINISTIC_MAX_BYTES",
    "HARD_MAX_BYTES",
    "ByteSource",
    "DataConfig",
    "DataError",
    "FilterStats",
    "HuggingFaceSource",
    "JsonlSource",
    "LocalFilesSource",
    "StackV2Source",
    "TextSource",
    "apply_filters",
    "build_source",
    "dedup",
    "digest",
    "find_files",
    "limit",
    "make_source",
    "size_bounds",
    "skip_empty",
    "utf8_only",
]
