"""The Stack v2: file ids from a Hugging Face dataset, contents from Software Heritage S3.

`bigcode/the-stack-v2` (and its `-dedup` variants) lists one row per file with a `blob_id`,
its `src_encoding` and `length_bytes`; the content is at `s3://softwareheritage/content/<blob_id>`,
gzip-compressed, readable anonymously. Rows stream through the same loader as
`HuggingFaceSource` (so local json/parquet rows work too); blobs are downloaded by a small
thread pool, in row order, and decoded from `src_encoding` to UTF-8 (as the official
quickstart does) unless `transcode_utf8` is off.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from soma_ray.data.config import STACK_V2_BUCKET, STACK_V2_DATASET
from soma_ray.data.errors import DataError, SkipLog, first_line
from soma_ray.data.filters import FilterStats
from soma_ray.data.hf import HubDataset, check_columns, iter_rows

__all__ = ["StackV2Source"]

_STATEFUL = ("utf-7", "hz")  # and iso2022_*: escape sequences, no bound on bytes per character


def _bytes_per_output_byte(encoding: str | None) -> int | None:
    """At most how many stored bytes make one output byte (None: no bound).

    1 when bytes are kept as they are (raw, UTF-8, ASCII); 4 for any other stateless codec
    (no character takes more than 4 bytes, and none less than 1 in UTF-8).
    """
    if encoding is None or encoding in ("utf-8", "ascii"):
        return 1
    if encoding in _STATEFUL or encoding.startswith("iso2022"):
        return None
    return 4


def _gunzip(data: bytes, cap: int | None) -> bytes | None:
    """Decompress (all gzip members); None when the result would exceed `cap` bytes."""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        out = stream.read() if cap is None else stream.read(cap + 1)
    if cap is not None and len(out) > cap:
        return None
    return out


class _Fatal(Exception):
    """A download failure that no other blob can avoid (e.g. the bucket does not exist)."""


class _Missing(Exception):
    """The blob is not in the bucket."""


def _transcode(blob_id: str, codec: str | None, data: bytes, skips: SkipLog) -> bytes | None:
    """`data` decoded from `codec` and encoded as UTF-8 (None: keep the bytes as they are)."""
    try:
        if codec is None:
            return data
        if codec in ("utf-8", "ascii"):
            if not data.isascii():
                data.decode(codec)  # valid UTF-8 (or ASCII) is its own UTF-8 encoding
            return data
        return data.decode(codec).encode("utf-8")
    except (UnicodeError, ValueError, LookupError) as exc:  # LookupError: a bytes-to-bytes codec (base64, rot13)
        skips.skip(f"blob {blob_id}: cannot decode as {codec} ({first_line(exc, 100)})")
        return None


class StackV2Source:
    """The contents of The Stack v2 files, one sample per row.

    - A missing or unreadable blob, a corrupt gzip or an undecodable file is skipped with a
      warning; `max_consecutive_failures` download failures in a row (a wrong endpoint or
      bucket, no network) raise `DataError`.
    - With `max_bytes`, rows whose `length_bytes` already exceed it are skipped before
      download, and decompression stops early for blobs that turn out larger.
    - The S3 client is made on iteration, so the source itself pickles (Ray can ship it).
    """

    def __init__(
        self,
        dataset: str = STACK_V2_DATASET,
        *,
        name: str | None = None,
        split: str = "train",
        revision: str | None = None,
        data_files: str | Sequence[str] | None = None,
        shuffle_buffer: int = 0,
        seed: int = 0,
        blob_column: str = "blob_id",
        encoding_column: str = "src_encoding",
        length_column: str = "length_bytes",
        bucket: str = STACK_V2_BUCKET,
        prefix: str = "content/",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        transcode_utf8: bool = True,
        workers: int = 8,
        max_bytes: int | None = None,
        max_consecutive_failures: int = 32,
        stats: FilterStats | None = None,
    ) -> None:
        if workers < 1:
            raise DataError(f"download workers must be at least 1, got {workers}")
        self.hub = HubDataset(dataset, name, split, revision, data_files, shuffle_buffer, seed)
        self.blob_column = blob_column
        self.encoding_column = encoding_column
        self.length_column = length_column
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.region = region
        self.transcode_utf8 = transcode_utf8
        self.workers = workers
        self.max_bytes = max_bytes
        self.max_consecutive_failures = max_consecutive_failures
        self.stats = stats
        self.label = self.hub.label

    def client(self) -> Any:
        """An anonymous (unsigned) S3 client, as the public Software Heritage bucket needs."""
        from soma_ray.storage.errors import StorageError
        from soma_ray.storage.s3_client import s3_client

        try:
            return s3_client(
                endpoint_url=self.endpoint_url,
                region=self.region,
                signing="anonymous",
                max_attempts=5,
                max_pool_connections=max(10, self.workers),
                label=f"the Stack v2 bucket {self.bucket!r}",
            )
        except StorageError as exc:
            raise DataError(str(exc)) from None

    def rows(self) -> Iterator[Mapping[str, Any]]:
        """The dataset rows (blob ids and metadata), streamed."""
        stream = self.hub.open()
        check_columns(stream, [self.blob_column], self.label)
        return iter_rows(stream, self.label)

    def _download(self, client: Any, blob_id: str, cap: int | None) -> bytes | None:
        """The blob, decompressed; None if larger than `cap`. Raises on any failure."""
        from soma_ray.storage.s3_client import error_code

        try:
            body = client.get_object(Bucket=self.bucket, Key=self.prefix + blob_id)["Body"].read()
        except Exception as exc:
            code = error_code(exc)
            if code == "NoSuchBucket":
                raise _Fatal(
                    f"S3 bucket {self.bucket!r} does not exist at {self.endpoint_url or 'AWS S3'}; "
                    "check s3_bucket and s3_endpoint_url"
                ) from None
            if code in ("NoSuchKey", "404"):
                raise _Missing(blob_id) from None
            raise
        return _gunzip(body, cap)

    def __iter__(self) -> Iterator[bytes]:
        rows = self.rows()
        client = self.client()
        skips = SkipLog(f"stack v2 {self.label}", stats=self.stats)
        where = f"s3://{self.bucket}/{self.prefix}"
        window: deque[tuple[str, str | None, Future[bytes | None]]] = deque()
        failures = 0
        checked = False
        executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="stack-v2")

        def finish(blob_id: str, codec: str | None, future: Future[bytes | None]) -> bytes | None:
            nonlocal failures
            try:
                data = future.result()
            except _Fatal as exc:
                raise DataError(str(exc)) from None
            except (gzip.BadGzipFile, EOFError, zlib.error) as exc:  # downloaded, but not a whole gzip
                failures = 0
                skips.skip(f"blob {blob_id}: not a valid gzip file ({first_line(exc)})")
                return None
            except Exception as exc:  # noqa: BLE001 - missing blob; botocore: access denied, throttling, network
                failures += 1
                reason = (
                    f"not found in {where}" if isinstance(exc, _Missing) else f"download failed ({first_line(exc)})"
                )
                skips.skip(f"blob {blob_id}: {reason}")
                if failures >= self.max_consecutive_failures:
                    raise DataError(
                        f"{failures} Stack v2 blob downloads in a row failed from {where}; "
                        "check s3_endpoint_url, s3_bucket, s3_prefix and network access"
                    ) from None
                return None
            failures = 0
            if data is None:
                self._too_large()
                return None
            return _transcode(blob_id, codec, data, skips)

        try:
            for index, row in enumerate(rows):
                if self.blob_column not in row and not checked:
                    have = ", ".join(list(row)[:20])
                    raise DataError(
                        f"Hugging Face dataset {self.label}: no column {self.blob_column!r} (it has: {have}); "
                        "set `column` to the blob id column"
                    )
                checked = True
                blob_id = row.get(self.blob_column)
                if not isinstance(blob_id, str) or not blob_id:
                    skips.skip(f"row {index}: no blob id in {self.blob_column!r}")
                    continue
                codec = self._codec(row, blob_id, skips)
                if codec == "":
                    continue
                ratio = _bytes_per_output_byte(codec)
                cap = None
                if self.max_bytes is not None and ratio is not None:
                    cap = self.max_bytes * ratio + (0 if ratio == 1 else 4)
                    length = row.get(self.length_column)
                    if isinstance(length, int) and length > cap:
                        self._too_large()
                        continue
                window.append((blob_id, codec, executor.submit(self._download, client, blob_id, cap)))
                if len(window) >= self.workers * 4:
                    data = finish(*window.popleft())
                    if data is not None:
                        yield data
            while window:
                data = finish(*window.popleft())
                if data is not None:
                    yield data
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    def _codec(self, row: Mapping[str, Any], blob_id: str, skips: SkipLog) -> str | None:
        """The normalised codec to decode with; None for raw bytes; "" to skip the row."""
        if not self.transcode_utf8:
            return None
        encoding = row.get(self.encoding_column)
        if not encoding:
            return None
        try:
            info = codecs.lookup(str(encoding))
        except (LookupError, ValueError):  # ValueError: a NUL in the name
            skips.skip(f"blob {blob_id}: unknown src_encoding {encoding!r}")
            return ""
        if not getattr(info, "_is_text_encoding", True):  # base64, rot13, zlib: not a text encoding
            skips.skip(f"blob {blob_id}: src_encoding {encoding!r} is not a text encoding")
            return ""
        return info.name

    def _too_large(self) -> None:
        if self.stats is not None:
            self.stats.seen += 1
            self.stats.too_large += 1
