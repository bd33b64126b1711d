"""`DataConfig`: one byte source and the filters applied to it.

Flat on purpose (one YAML section, `--set data.max_bytes=4096` works), with cross-field rules
checked once: a field that does not apply to the chosen source is an error rather than
silently ignored, so `field:` on a Hugging Face source (which takes `column:`) is caught.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from soma_ray.paths import absolute, absolute_location, http_url
from soma_ray.protocol.constants import BATCH_SIZE, MAX_SEQ_LEN, ProtocolParams

__all__ = [
    "DETERMINISTIC_MAX_BYTES",
    "HARD_MAX_BYTES",
    "STACK_V2_BUCKET",
    "STACK_V2_DATASET",
    "DataConfig",
    "SourceKind",
]

SourceKind = Literal["text", "jsonl", "files", "huggingface", "stack_v2"]

# One batch of 16 chunks of 1024 bytes: the largest sample the official scorer scores
# deterministically (protocol.md §1.3), hence the default cap.
DETERMINISTIC_MAX_BYTES = MAX_SEQ_LEN * BATCH_SIZE
# The on-chain `max_submission_data_size` (protocol.md §1.7): nothing larger can be submitted.
HARD_MAX_BYTES = ProtocolParams.max_submission_data_size

STACK_V2_DATASET = "bigcode/the-stack-v2-dedup"
STACK_V2_BUCKET = "softwareheritage"

_COMMON = frozenset({"source", "min_bytes", "max_bytes", "utf8_only", "dedup", "limit"})
_LOCAL = frozenset({"path", "paths", "globs"})
_HF = frozenset({"dataset", "name", "split", "revision", "data_files", "column", "shuffle_buffer", "seed"})
_S3 = frozenset({"s3_endpoint_url", "s3_bucket", "s3_prefix", "s3_region", "transcode_utf8", "download_workers"})
_FIELDS_OF: dict[str, frozenset[str]] = {
    "text": _COMMON | _LOCAL | {"text_unit"},
    "jsonl": _COMMON | _LOCAL | {"field"},
    "files": _COMMON | _LOCAL,
    "huggingface": _COMMON | _HF,
    "stack_v2": _COMMON | _HF | _S3,
}


class DataConfig(BaseModel):
    """Where samples come from and which ones are kept.

    Sources:
    - `text`: text files under `path`/`paths`/`globs`; each file, line or blank-line-separated
      paragraph (`text_unit`) is a sample, as raw bytes.
    - `jsonl`: JSON Lines files (`.jsonl` or `.jsonl.gz`); the string `field` of each record,
      UTF-8 encoded.
    - `files`: every file of a directory tree (a source repository) or of `globs`, raw bytes.
    - `huggingface`: a streamed Hugging Face dataset (`dataset`, `name`, `split`, `revision`,
      or `dataset: json|parquet` with local `data_files`); the `column` (default `text`).
    - `stack_v2`: The Stack v2 rows (default `bigcode/the-stack-v2-dedup`), each blob
      (`column`, default `blob_id`) downloaded from the Software Heritage S3 bucket.

    Globs are relative to each directory in `path`/`paths` (the working directory when none),
    support `**`, and filter the files of those directories; files named directly are always read.

    Filters, in order: empty samples are always dropped, then `min_bytes`..`max_bytes`,
    `utf8_only`, `dedup` (exact, Blake2b-256 of the bytes), and at most `limit` samples.
    """

    model_config = ConfigDict(extra="forbid")

    source: SourceKind = "text"

    # Local sources (text, jsonl, files).
    path: Path | None = None
    paths: list[Path] = Field(default_factory=list)
    globs: list[str] = Field(default_factory=list)
    text_unit: Literal["file", "line", "paragraph"] = "file"
    field: str = Field(default="text", min_length=1)

    # Hugging Face (huggingface, stack_v2).
    dataset: str | None = None
    name: str | None = None
    split: str = "train"
    revision: str | None = None
    data_files: str | list[str] | None = None
    column: str | None = Field(default=None, min_length=1)
    shuffle_buffer: int = Field(default=0, ge=0)
    seed: int = 0

    # The Stack v2 blob download (anonymous S3).
    s3_endpoint_url: str | None = None
    s3_bucket: str = Field(default=STACK_V2_BUCKET, min_length=1)
    s3_prefix: str = "content/"
    s3_region: str = "us-east-1"
    transcode_utf8: bool = True
    download_workers: int = Field(default=8, ge=1, le=256)

    # Filters.
    min_bytes: int = Field(default=1, ge=1)
    max_bytes: int = Field(default=DETERMINISTIC_MAX_BYTES, ge=1)
    utf8_only: bool = False
    dedup: bool = True
    limit: int | None = Field(default=None, ge=1)

    @field_validator("max_bytes", "min_bytes")
    @classmethod
    def _within_chain_limit(cls, value: int) -> int:
        if value > HARD_MAX_BYTES:
            raise ValueError(
                f"{value:,} is above the on-chain limit of {HARD_MAX_BYTES:,} bytes (1 MiB); lower it "
                f"({DETERMINISTIC_MAX_BYTES:,} is the largest size the official scorer is deterministic at)"
            )
        return value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _http_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// URL, or left out for AWS S3")
        return None if value is None else http_url(value)

    @model_validator(mode="after")
    def _cross_field_rules(self) -> DataConfig:
        allowed = _FIELDS_OF[self.source]
        stray = sorted(self.model_fields_set - allowed)
        if stray:
            names = ", ".join(stray)
            verb = "does" if len(stray) == 1 else "do"
            hint = ""
            if "field" in stray and self.source in ("huggingface", "stack_v2"):
                hint = " (Hugging Face sources take `column`)"
            elif "column" in stray and self.source == "jsonl":
                hint = " (JSONL takes `field`)"
            elif stray[0] in _LOCAL and self.source == "huggingface":
                hint = " (for local files give `dataset: json` or `parquet` with `data_files`)"
            raise ValueError(f"{names} {verb} not apply to source {self.source!r}; remove it{hint}")
        if self.source in ("text", "jsonl", "files") and not (self.path or self.paths or self.globs):
            raise ValueError(f"source {self.source!r} needs `path`, `paths` or `globs`")
        if self.source == "huggingface" and not self.dataset:
            raise ValueError(
                "source 'huggingface' needs `dataset` (a Hub id such as 'HuggingFaceFW/fineweb', "
                "or 'json'/'parquet' with `data_files`)"
            )
        if self.min_bytes > self.max_bytes:
            raise ValueError(
                f"min_bytes ({self.min_bytes:,}) is above max_bytes ({self.max_bytes:,}); swap or fix them"
            )
        return self

    def with_absolute_paths(self, base: Path) -> DataConfig:
        """The same config with relative local paths made absolute against `base`.

        Processes that run elsewhere (Ray Train workers start in their own folder) then read
        the files the user meant.
        """
        update: dict[str, object] = {}
        if self.path is not None:
            update["path"] = absolute(self.path, base)
        if self.paths:
            update["paths"] = [absolute(p, base) for p in self.paths]
        if isinstance(self.data_files, str):
            update["data_files"] = absolute_location(self.data_files, base)
        elif isinstance(self.data_files, list):
            update["data_files"] = [absolute_location(f, base) for f in self.data_files]
        return self.model_copy(update=update)

    @property
    def local_paths(self) -> list[Path]:
        """`path` then `paths`, as given."""
        return ([self.path] if self.path is not None else []) + list(self.paths)

    @property
    def dataset_id(self) -> str:
        """The Hugging Face dataset to stream (`dataset`, or The Stack v2 for `stack_v2`)."""
        if self.dataset:
            return self.dataset
        if self.source == "stack_v2":
            return STACK_V2_DATASET
        raise ValueError(f"source {self.source!r} has no Hugging Face dataset")

    @property
    def column_name(self) -> str:
        """The column read: `column`, else `blob_id` for stack_v2 and `text` otherwise."""
        if self.column:
            return self.column
        return "blob_id" if self.source == "stack_v2" else "text"
