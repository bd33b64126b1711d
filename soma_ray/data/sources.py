"""One interface over every byte source, and `build_source`: config → filtered samples.

A source is anything iterable over `bytes` (`ByteSource`); each iteration starts over. The
sources hold no open files or clients between iterations, so they pickle (Ray can ship them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from soma_ray.data.config import DataConfig
from soma_ray.data.filters import FilterStats, apply_filters
from soma_ray.data.hf import HuggingFaceSource
from soma_ray.data.local import JsonlSource, LocalFilesSource, TextSource
from soma_ray.data.stack_v2 import StackV2Source

__all__ = ["ByteSource", "build_source", "check_source", "make_source"]


@runtime_checkable
class ByteSource(Protocol):
    """An iterable of samples (raw bytes)."""

    def __iter__(self) -> Iterator[bytes]: ...


def make_source(config: DataConfig, stats: FilterStats | None = None) -> ByteSource:
    """The configured source, unfiltered. Local paths are checked now (`DataError` if missing);
    Hugging Face and S3 are reached on iteration.

    `config.max_bytes` is handed to sources that can skip over-long samples without reading
    them in full (files by size on disk, Stack v2 rows by `length_bytes`); they count those
    in `stats.too_large`.
    """
    if config.source == "text":
        return TextSource(
            config.local_paths, config.globs, unit=config.text_unit, max_bytes=config.max_bytes, stats=stats
        )
    if config.source == "jsonl":
        return JsonlSource(config.local_paths, config.globs, field=config.field, stats=stats)
    if config.source == "files":
        return LocalFilesSource(config.local_paths, config.globs, max_bytes=config.max_bytes, stats=stats)
    if config.source == "huggingface":
        return HuggingFaceSource(config.dataset_id, column=config.column_name, **_hub_settings(config), stats=stats)
    return StackV2Source(
        config.dataset_id,
        **_hub_settings(config),
        blob_column=config.column_name,
        bucket=config.s3_bucket,
        prefix=config.s3_prefix,
        endpoint_url=config.s3_endpoint_url,
        region=config.s3_region,
        transcode_utf8=config.transcode_utf8,
        workers=config.download_workers,
        max_bytes=config.max_bytes,
        stats=stats,
    )


def check_source(config: DataConfig) -> None:
    """Fail now, with `DataError`, on what can be checked without streaming: the local paths and
    globs name files. Entry points call it before Ray starts, so a wrong path is one line at once
    rather than an error inside a Ray task. (Hugging Face and S3 are only reached on iteration.)"""
    make_source(config)


def _hub_settings(config: DataConfig) -> dict[str, Any]:
    """The dataset-locating settings both Hugging Face sources take."""
    return config.model_dump(include={"name", "split", "revision", "data_files", "shuffle_buffer", "seed"})


def build_source(config: DataConfig, stats: FilterStats | None = None) -> Iterator[bytes]:
    """The configured samples with the filters applied in order: empty samples dropped,
    `min_bytes`..`max_bytes`, `utf8_only`, `dedup`, `limit`.

    Pass a `FilterStats` to watch counts (seen, dropped per filter, kept) while it runs.
    """
    source = make_source(config, stats)
    return apply_filters(
        source,
        min_bytes=config.min_bytes,
        max_bytes=config.max_bytes,
        utf8=config.utf8_only,
        unique=config.dedup,
        count=config.limit,
        stats=stats,
    )
