"""StackV2Source end to end: blob-id rows from a local dataset (json/parquet through the same
Hugging Face loader), gzip blobs downloaded anonymously from a real S3 server (moto)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from soma_ray.data import DataConfig, DataError, FilterStats, StackV2Source, build_source
from tests.data.kit import SwhS3, non_utf8, random_bytes, write_jsonl


def rows_file(tmp_path: Path, rows: list[dict[str, Any]], name: str = "rows.jsonl") -> list[str]:
    return [str(write_jsonl(tmp_path / name, rows))]


def source(swh: SwhS3, data_files: list[str], dataset: str = "json", **kwargs: Any) -> StackV2Source:
    return StackV2Source(dataset, data_files=data_files, endpoint_url=swh.endpoint, **kwargs)


def test_end_to_end_with_transcoding(swh: SwhS3, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    python = b"def main():\n    print('hello')\n"
    latin = "caf\u00e9 = 'cr\u00e8me br\u00fbl\u00e9e'\n"
    utf16 = "// \u65e5\u672c\u8a9e\n"
    swh.put_blob("e2e-py", python)
    swh.put_blob("e2e-latin1", latin.encode("latin-1"))
    swh.put_blob("e2e-utf16", utf16.encode("utf-16"))
    swh.put_blob("e2e-bad-utf8", b"ok \xff\xfe not utf-8")
    swh.put_blob("e2e-not-gzip", b"plain bytes", compress=False)
    rows = [
        {"blob_id": "e2e-py", "src_encoding": "UTF-8", "language": "Python", "length_bytes": len(python)},
        {"blob_id": "e2e-missing", "src_encoding": "UTF-8", "language": "C", "length_bytes": 10},
        {"blob_id": "e2e-latin1", "src_encoding": "ISO-8859-1", "language": "Python", "length_bytes": 24},
        {"blob_id": "e2e-bad-utf8", "src_encoding": "UTF-8", "language": "C", "length_bytes": 17},
        {"blob_id": "e2e-not-gzip", "src_encoding": "UTF-8", "language": "C", "length_bytes": 11},
        {"blob_id": "e2e-utf16", "src_encoding": "UTF-16", "language": "C", "length_bytes": 14},
        {"blob_id": "e2e-odd", "src_encoding": "no-such-codec", "language": "C", "length_bytes": 3},
    ]
    files = rows_file(tmp_path, rows)
    with caplog.at_level(logging.WARNING, logger="soma_ray.data"):
        got = list(source(swh, files, workers=3))
    assert got == [python, latin.encode(), utf16.encode()]
    for problem in (
        "blob e2e-missing: not found in s3://softwareheritage/content/; skipped",
        "blob e2e-bad-utf8: cannot decode as utf-8 (UnicodeDecodeError",
        "blob e2e-not-gzip: not a valid gzip file",
        "blob e2e-odd: unknown src_encoding 'no-such-codec'",
    ):
        assert problem in caplog.text


def test_raw_bytes_in_order_from_parquet(swh: SwhS3, tmp_path: Path) -> None:
    blobs = {f"raw-{i:02d}": (non_utf8(i, 100 + 37 * i) if i % 2 else random_bytes(i, 50 + i)) for i in range(20)}
    for blob_id, data in blobs.items():
        swh.put_blob(blob_id, data)
    table = pa.table({"blob_id": list(blobs), "src_encoding": ["UTF-8"] * len(blobs)})
    pq.write_table(table, tmp_path / "rows.parquet")
    got = list(source(swh, [str(tmp_path / "rows.parquet")], "parquet", transcode_utf8=False, workers=4))
    assert got == list(blobs.values())  # downloads run in parallel; order is the rows' order


def test_rows_without_encoding_column_yield_raw_bytes(swh: SwhS3, tmp_path: Path) -> None:
    data = non_utf8(99, 64)
    swh.put_blob("noenc", data)
    assert list(source(swh, rows_file(tmp_path, [{"blob_id": "noenc"}]))) == [data]


def test_length_bytes_skips_downloads_above_max_bytes(
    swh: SwhS3, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    swh.put_blob("size-small", b"x" * 10)
    swh.put_blob("size-liar", b"y" * 100)  # listed as small, is large: decompression stops early
    rows = [
        {"blob_id": "size-huge-not-uploaded", "src_encoding": "UTF-8", "length_bytes": 5_000_000},
        {"blob_id": "size-small", "src_encoding": "UTF-8", "length_bytes": 10},
        {"blob_id": "size-liar", "src_encoding": "UTF-8", "length_bytes": 10},
    ]
    stats = FilterStats()
    with caplog.at_level(logging.WARNING, logger="soma_ray.data"):
        got = list(source(swh, rows_file(tmp_path, rows), max_bytes=50, stats=stats))
    assert got == [b"x" * 10]
    assert stats.too_large == 2
    assert "size-huge" not in caplog.text  # never requested, so never "not found"


def test_build_source_stack_v2(swh: SwhS3, tmp_path: Path) -> None:
    contents = [b"int main(void) { return 0; }\n", b"print(1)\n", b"int main(void) { return 0; }\n", b"z" * 20_000]
    for i, data in enumerate(contents):
        swh.put_blob(f"cfg-{i}", data)
    rows = [{"blob_id": f"cfg-{i}", "src_encoding": "UTF-8", "length_bytes": len(d)} for i, d in enumerate(contents)]
    config = DataConfig.model_validate(
        {
            "source": "stack_v2",
            "dataset": "json",
            "data_files": rows_file(tmp_path, rows),
            "s3_endpoint_url": swh.endpoint,
            "download_workers": 2,
        }
    )
    stats = FilterStats()
    assert list(build_source(config, stats)) == contents[:2]  # duplicate dropped, 20,000 B above 16,384
    assert (stats.duplicate, stats.too_large, stats.kept) == (1, 1, 2)


def test_limit_stops_the_stream(swh: SwhS3, tmp_path: Path) -> None:
    for i in range(10):
        swh.put_blob(f"lim-{i}", f"file {i}\n".encode())
    rows = [{"blob_id": f"lim-{i}"} for i in range(10)]
    config = DataConfig(
        source="stack_v2",
        dataset="json",
        data_files=rows_file(tmp_path, rows),
        s3_endpoint_url=swh.endpoint,
        limit=3,
    )
    assert list(build_source(config)) == [b"file 0\n", b"file 1\n", b"file 2\n"]


def test_many_failures_in_a_row_are_a_config_error(swh: SwhS3, tmp_path: Path) -> None:
    rows = [{"blob_id": f"absent-{i}"} for i in range(10)]
    with pytest.raises(DataError, match=r"3 Stack v2 blob downloads in a row failed .*check s3_endpoint_url"):
        list(source(swh, rows_file(tmp_path, rows), max_consecutive_failures=3))


def test_wrong_bucket_and_missing_column(swh: SwhS3, tmp_path: Path) -> None:
    files = rows_file(tmp_path, [{"blob_id": "whatever"}])
    wrong = StackV2Source("json", data_files=files, endpoint_url=swh.endpoint, bucket="no-such-bucket")
    with pytest.raises(DataError, match=r"S3 bucket 'no-such-bucket' does not exist at http://127.0.0.1:\d+"):
        list(wrong)
    files = rows_file(tmp_path, [{"id": "x", "path": "a.py"}], "other.jsonl")
    with pytest.raises(DataError, match=r"no column 'blob_id' \(it has: id, path\); set `column`"):
        list(source(swh, files))
