"""Hugging Face streaming datasets: the Hub (with `HF_TOKEN` for gated sets) or local files.

One loader, `open_dataset`, serves both: `load_dataset("HuggingFaceFW/fineweb", streaming=True)`
over the network, and `load_dataset("json" | "parquet", data_files=..., streaming=True)` on
local files (which works with `HF_DATASETS_OFFLINE=1`). `datasets` is imported on first use
only, so importing `soma_ray.data` stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from soma_ray.data.errors import DataError, SkipLog, first_line
from soma_ray.data.filters import FilterStats

__all__ = ["HubDataset", "HuggingFaceSource", "check_columns", "dataset_label", "iter_rows", "open_dataset", "sample_bytes"]


def dataset_label(dataset: str, name: str | None, split: str, data_files: str | Sequence[str] | None) -> str:
    label = dataset + (f"/{name}" if name else "") + f" [{split}]"
    if data_files:
        files = [data_files] if isinstance(data_files, str) else list(data_files)
        label += f" ({', '.join(files[:3])}{', ...' if len(files) > 3 else ''})"
    return label


def _hf_error(exc: Exception, label: str) -> DataError:
    """One line for a failure of `datasets`: what went wrong and the usual fix."""
    from datasets.exceptions import DatasetNotFoundError  # type: ignore[import-untyped]

    what = first_line(exc)
    if isinstance(exc, DatasetNotFoundError):
        fix = "check the dataset id; for a gated dataset accept its terms on the Hub and set HF_TOKEN"
    elif isinstance(exc, FileNotFoundError):
        fix = "check `data_files` (paths or globs of existing files) or the dataset id"
    elif isinstance(exc, ConnectionError):
        fix = "check network access (and that HF_DATASETS_OFFLINE is not set), or use local data_files"
    elif isinstance(exc, ValueError):
        fix = "check `name` (config) and `split`"
    else:
        fix = "check the dataset settings and network access"
    return DataError(f"Hugging Face dataset {label}: {what}; {fix}")


def open_dataset(
    dataset: str,
    *,
    name: str | None = None,
    split: str = "train",
    revision: str | None = None,
    data_files: str | Sequence[str] | None = None,
    shuffle_buffer: int = 0,
    seed: int = 0,
) -> Any:
    """A streaming `datasets.IterableDataset` (shuffled through a buffer when `shuffle_buffer`)."""
    import datasets  # type: ignore[import-untyped]

    label = dataset_label(dataset, name, split, data_files)
    kwargs: dict[str, Any] = {"split": split, "streaming": True, "token": os.environ.get("HF_TOKEN") or None}
    if revision:
        kwargs["revision"] = revision
    if data_files:
        kwargs["data_files"] = data_files if isinstance(data_files, str) else list(data_files)
    try:
        stream = datasets.load_dataset(dataset, name, **kwargs)
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; all mean "cannot open it"
        raise _hf_error(exc, label) from None
    if shuffle_buffer > 0:
        stream = stream.shuffle(buffer_size=shuffle_buffer, seed=seed)
    return stream


@dataclass(frozen=True)
class HubDataset:
    """Where a streaming dataset lives: shared by the plain and the Stack v2 sources."""

    dataset: str
    name: str | None = None
    split: str = "train"
    revision: str | None = None
    data_files: str | Sequence[str] | None = None
    shuffle_buffer: int = 0
    seed: int = 0

    @property
    def label(self) -> str:
        return dataset_label(self.dataset, self.name, self.split, self.data_files)

    def open(self) -> Any:
        return open_dataset(
            self.dataset, name=self.name, split=self.split, revision=self.revision,
            data_files=self.data_files, shuffle_buffer=self.shuffle_buffer, seed=self.seed,
        )


def iter_rows(stream: Any, label: str = "dataset") -> Iterator[Mapping[str, Any]]:
    """The rows of a streaming dataset; a failure of the stream itself becomes `DataError`.

    (A `datasets` iterator cannot go on after it raised, so this ends the stream.)
    """
    iterator = iter(stream)
    while True:
        try:
            row = next(iterator)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - any failure of the stream ends it
            raise _hf_error(exc, label) from None
        yield row


def sample_bytes(value: object) -> bytes | None:
    """A column value as a sample: str → UTF-8, bytes-like → as is, anything else → None."""
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return None


def check_columns(stream: Any, needed: Sequence[str], label: str, setting: str = "column") -> None:
    """Raise `DataError` when the dataset's schema is known and lacks one of `needed`."""
    features = getattr(stream, "features", None)
    if not features:
        return
    missing = [c for c in needed if c not in features]
    if missing:
        have = ", ".join(list(features)[:20])
        raise DataError(f"Hugging Face dataset {label}: no column {missing[0]!r} (it has: {have}); set `{setting}`")


class HuggingFaceSource:
    """One sample per row: the `column` value, UTF-8 encoded if it is text, as is if bytes.

    Rows whose value is null are skipped quietly, other non-text values with a warning.
    Each iteration streams the dataset again from the start (same order for a fixed seed).
    """

    def __init__(
        self,
        dataset: str,
        *,
        column: str = "text",
        name: str | None = None,
        split: str = "train",
        revision: str | None = None,
        data_files: str | Sequence[str] | None = None,
        shuffle_buffer: int = 0,
        seed: int = 0,
        stats: FilterStats | None = None,
    ) -> None:
        self.hub = HubDataset(dataset, name, split, revision, data_files, shuffle_buffer, seed)
        self.column = column
        self.label = self.hub.label
        self.stats = stats

    def open(self) -> Any:
        return self.hub.open()

    def __iter__(self) -> Iterator[bytes]:
        stream = self.open()
        check_columns(stream, [self.column], self.label)
        skips = SkipLog(self.label, stats=self.stats)
        checked = False
        for index, row in enumerate(iter_rows(stream, self.label)):
            if self.column not in row:
                if not checked:
                    have = ", ".join(list(row)[:20])
                    raise DataError(
                        f"Hugging Face dataset {self.label}: no column {self.column!r} (it has: {have}); set `column`"
                    )
                skips.skip(f"row {index}: no column {self.column!r}")
                continue
            checked = True
            value = row[self.column]
            if value is None:
                continue
            data = sample_bytes(value)
            if data is None:
                skips.skip(f"row {index}: column {self.column!r} holds {type(value).__name__}, not text or bytes")
                continue
            yield data
