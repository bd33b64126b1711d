"""HuggingFaceSource streams local json and parquet through the same `load_dataset` path as the
Hub (HF_DATASETS_OFFLINE=1, set by the root conftest)."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from soma_ray.data import DataConfig, DataError, HuggingFaceSource, build_source
from tests.data.kit import non_utf8, random_bytes, write_jsonl

TEXTS = ["first row", "ünïcödé ✓", "", "def f():\n    return 42\n", "first row", "last"]


def test_offline_mode_is_on() -> None:
    assert os.environ.get("HF_DATASETS_OFFLINE") == "1"


def test_json_files(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"text": t, "n": i} for i, t in enumerate(TEXTS[:3])])
    write_jsonl(tmp_path / "b.jsonl", [{"text": t, "n": i} for i, t in enumerate(TEXTS[3:])])
    source = HuggingFaceSource("json", data_files=[str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")])
    assert list(source) == [t.encode() for t in TEXTS]
    config = DataConfig(source="huggingface", dataset="json", data_files=str(tmp_path / "*.jsonl"))
    assert list(build_source(config)) == [b"first row", "ünïcödé ✓".encode(), b"def f():\n    return 42\n", b"last"]


def test_parquet_binary_and_string_columns(tmp_path: Path) -> None:
    blobs = [non_utf8(1, 100), random_bytes(2, 5000), b"plain", None]
    table = pa.table({"content": pa.array(blobs, type=pa.binary()), "text": ["a", None, "c", "d"]})
    pq.write_table(table, tmp_path / "part-0.parquet")
    files = [str(tmp_path / "part-0.parquet")]
    assert list(HuggingFaceSource("parquet", data_files=files, column="content")) == blobs[:3]
    assert list(HuggingFaceSource("parquet", data_files=files)) == [b"a", b"c", b"d"]
    config = DataConfig(source="huggingface", dataset="parquet", data_files=files, column="content", utf8_only=True)
    assert list(build_source(config)) == [b"plain"]


def test_shuffle_is_seeded(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"text": f"row {i}"} for i in range(50)])
    files = [str(tmp_path / "a.jsonl")]
    first = list(HuggingFaceSource("json", data_files=files, shuffle_buffer=20, seed=7))
    again = list(HuggingFaceSource("json", data_files=files, shuffle_buffer=20, seed=7))
    assert first == again
    assert sorted(first) == sorted(f"row {i}".encode() for i in range(50))
    assert first != [f"row {i}".encode() for i in range(50)]


def test_missing_column_names_the_columns(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"content": "x", "lang": "py"}])
    source = HuggingFaceSource("json", data_files=[str(tmp_path / "a.jsonl")])
    with pytest.raises(DataError, match=r"no column 'text' \(it has: content, lang\); set `column`"):
        list(source)


def test_non_text_values_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"v": "ok"}, {"v": 3}, {"v": None}, {"v": "fine"}])
    source = HuggingFaceSource("json", data_files=[str(tmp_path / "a.jsonl")], column="v")
    with caplog.at_level("WARNING", logger="soma_ray.data"):
        assert list(source) == [b"ok", b"fine"]
    assert "row 1: column 'v' holds int, not text or bytes; skipped" in caplog.text
    assert "row 2" not in caplog.text  # nulls are skipped quietly


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"json \[train\] .*FileNotFoundError.*; check `data_files`") as info:
        list(HuggingFaceSource("json", data_files=[str(tmp_path / "missing.jsonl")]))
    assert "\n" not in str(info.value)
    write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    with pytest.raises(DataError, match=r"Bad split: test.*; check `name` \(config\) and `split`"):
        list(HuggingFaceSource("json", data_files=[str(tmp_path / "a.jsonl")], split="test"))
    # A Hub dataset while offline: the real code path, failing with the fix named.
    with pytest.raises(DataError, match=r"bigcode/the-stack-v2-dedup \[train\]: .*check network access"):
        list(HuggingFaceSource("bigcode/the-stack-v2-dedup", column="blob_id"))
