"""Filters, alone and through build_source: empty, size bounds (default 16,384), UTF-8, dedup, limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from soma_ray.data import (
    DataConfig,
    FilterStats,
    apply_filters,
    build_source,
    dedup,
    digest,
    limit,
    size_bounds,
    skip_empty,
    utf8_only,
)
from tests.data.kit import non_utf8, random_bytes


def test_each_filter() -> None:
    samples = [b"", b"a", b"bb", b"", b"ccc"]
    assert list(skip_empty(samples)) == [b"a", b"bb", b"ccc"]
    assert list(size_bounds(samples, 2, 2)) == [b"bb"]
    assert list(utf8_only([b"ok", "é".encode(), b"\xff", b"\xc3"])) == [b"ok", "é".encode()]
    assert list(dedup([b"x", b"y", b"x", b"y", b"z"])) == [b"x", b"y", b"z"]
    assert list(limit([b"1", b"2", b"3"], 2)) == [b"1", b"2"]
    assert list(limit([b"1", b"2"], None)) == [b"1", b"2"]
    assert digest(b"abc") == bytes.fromhex("bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319")


def test_limit_pulls_no_more_than_it_yields() -> None:
    pulled: list[int] = []

    def upstream() -> Iterator[bytes]:
        for i in range(100):
            pulled.append(i)
            yield bytes([65 + i % 26])

    assert len(list(limit(upstream(), 3))) == 3
    assert pulled == [0, 1, 2]


def test_apply_filters_counts_what_it_drops() -> None:
    stats = FilterStats()
    samples = [b"", b"a", b"hello", b"hello", b"\xff\xfe", b"x" * 20, b"world", b"more", b"never"]
    kept = list(apply_filters(samples, min_bytes=2, max_bytes=10, utf8=True, unique=True, count=2, stats=stats))
    assert kept == [b"hello", b"world"]
    assert stats.as_dict() == {
        "seen": 7,
        "unreadable": 0,
        "empty": 1,
        "too_small": 1,
        "too_large": 1,
        "not_utf8": 1,
        "duplicate": 1,
        "kept": 2,
    }


def write_files(root: Path, contents: dict[str, bytes]) -> Path:
    for name, data in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_build_source_default_size_cap_is_16384(tmp_path: Path) -> None:
    at_cap, above_cap = random_bytes(1, 16_384), random_bytes(2, 16_385)
    write_files(tmp_path, {"a": at_cap, "b": above_cap, "c": b"", "d": b"small"})
    stats = FilterStats()
    assert list(build_source(DataConfig(source="files", path=tmp_path), stats)) == [at_cap, b"small"]
    # The 16,385-byte file is skipped from its size on disk; the empty one by the empty filter.
    assert (stats.seen, stats.too_large, stats.empty, stats.kept) == (4, 1, 1, 2)


def test_build_source_filters_in_order(tmp_path: Path) -> None:
    bad = non_utf8(3, 50)
    write_files(
        tmp_path,
        {
            "1": b"tiny",
            "2": b"just right",
            "3": bad,
            "4": b"just right",
            "5": b"x" * 200,
            "6": b"also fine",
            "7": b"z" * 30,
        },
    )
    config = DataConfig(source="files", path=tmp_path, min_bytes=5, max_bytes=100)
    assert list(build_source(config)) == [b"just right", bad, b"also fine", b"z" * 30]
    config = DataConfig(source="files", path=tmp_path, min_bytes=5, max_bytes=100, utf8_only=True, limit=2)
    assert list(build_source(config)) == [b"just right", b"also fine"]
    config = DataConfig(source="files", path=tmp_path, min_bytes=5, max_bytes=100, dedup=False)
    assert list(build_source(config)) == [b"just right", bad, b"just right", b"also fine", b"z" * 30]
