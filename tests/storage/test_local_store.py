"""LocalBlobStore: round trips, URLs, atomic replacement, and keys that must not escape."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from soma_ray.storage import BlobNotFoundError, BlobStore, LocalBlobStore, StorageError


def test_put_get_exists_delete(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "root", base_url="http://host:8000/")
    assert isinstance(store, BlobStore)
    key = "weights/run 1/model.bin"
    assert not store.exists(key)

    url = store.put(key, b"\x00\x01weights")

    assert url == "http://host:8000/weights/run%201/model.bin"
    assert (tmp_path / "root" / "weights" / "run 1" / "model.bin").read_bytes() == b"\x00\x01weights"
    assert store.exists(key) and store.get(key) == b"\x00\x01weights"
    store.put(key, b"v2")
    assert store.get(key) == b"v2"
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # deleting twice is fine, as on S3
    with pytest.raises(BlobNotFoundError, match="no blob 'weights/run 1/model.bin'"):
        store.get(key)


def test_without_base_url_urls_are_file_uris(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    assert store.put("a.bin", b"x") == (tmp_path / "a.bin").resolve().as_uri()


def test_directories_are_not_blobs(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("dir/a.bin", b"x")
    assert not store.exists("dir")
    with pytest.raises(BlobNotFoundError):
        store.get("dir")
    with pytest.raises(StorageError, match="cannot write blob 'dir'"):
        store.put("dir", b"clobber")  # a directory is in the way: clear error, dir intact
    assert store.get("dir/a.bin") == b"x"


@pytest.mark.parametrize(
    "key",
    ["../outside", "a/../../outside", "a/..", "/etc/passwd", "", "a//b", "./a", "a\\..\\b", "a/\x00"],
)
def test_unsafe_keys_are_rejected(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path / "root")
    with pytest.raises(StorageError, match="invalid blob key"):
        store.put(key, b"x")
    with pytest.raises(StorageError, match="invalid blob key"):
        store.get(key)
    assert not (tmp_path / "outside").exists()


def test_symlink_out_of_root_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    store = LocalBlobStore(root)
    with pytest.raises(StorageError, match="leads outside"):
        store.put("link/x.bin", b"x")
    assert list(outside.iterdir()) == []


def test_failed_write_keeps_old_blob_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("w/model.bin", b"old")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StorageError) as info:
        store.put("w/model.bin", b"new but never complete")
    assert str(info.value) == (
        f"cannot write blob 'w/model.bin' under {tmp_path.resolve()}: No space left on device; "
        "check the directory is writable and has space"
    )
    assert store.get("w/model.bin") == b"old"
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["model.bin"]


def test_readers_never_see_a_partial_blob(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    versions = (b"a" * 200_000, b"b" * 300_000)
    store.put("blob", versions[0])
    stop = threading.Event()
    seen: set[bytes] = set()

    def read() -> None:
        while not stop.is_set():
            seen.add(store.get("blob"))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(60):
            store.put("blob", versions[i % 2])
    finally:
        stop.set()
        reader.join()
    assert seen <= set(versions)
    assert [p.name for p in tmp_path.iterdir()] == ["blob"]  # no temp files left over


def test_written_blobs_are_world_readable(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("x.bin", b"x")
    assert (tmp_path / "x.bin").stat().st_mode & 0o777 == 0o644
