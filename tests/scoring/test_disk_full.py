"""No room while caching model weights: the download (real HTTP from a local blob server) fails
with one line naming the model, the folder and the fix, leaves no partial or corrupt cache entry,
and the same fetch succeeds once there is room.

Three real routes to "no room": a file size limit (RLIMIT_FSIZE → EFBIG, in a child process; runs
everywhere), a tiny tmpfs (ENOSPC; skipped where mounting is not permitted), and the errno
injected at fsync and at write (ENOSPC, EDQUOT, EFBIG: what network filesystems and quotas say)."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from soma_models.v1.torch import ModelConfig

from soma_ray.chain.types import Manifest
from soma_ray.protocol.commitments import commitment
from soma_ray.scoring.store import ModelStore, ModelUnavailable
from soma_ray.storage import BlobHTTPServer, fetcher
from soma_ray.storage.fetcher import DiskFullError, URLFetcher

TINY = ModelConfig(dropout_rate=0.0, embedding_dim=16, pwff_hidden_dim=32, num_layers=2, num_heads=4)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def weights(tmp_path: Path) -> Iterator[Manifest]:
    """Random 'encrypted weights' as large as the tiny architecture allows, served over HTTP."""
    size = ModelStore(tmp_path / "probe", TINY).max_weights_bytes
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    data = os.urandom(size)
    (blobs / "w.enc").write_bytes(data)
    with BlobHTTPServer(blobs) as server:
        yield Manifest(f"{server.url}/w.enc", commitment(data), size, None)


def entries(weights_dir: Path) -> list[str]:
    """Everything in the cache but the lock files (a temp file left behind would show here)."""
    return sorted(p.name for p in weights_dir.iterdir() if not p.name.endswith(".lock"))


def assert_room_again_works(cache: Path, manifest: Manifest) -> None:
    store = ModelStore(cache, TINY)
    assert commitment(store.encrypted_bytes(manifest, model_id="0xfull")) == manifest.checksum
    assert entries(store.weights_dir) == [manifest.checksum] and store.stats.downloads == 1


# The fetch ModelStore caches through (storage.fetcher, no torch: the child starts fast).
CHILD = textwrap.dedent("""
    import json, resource, signal, sys
    from pathlib import Path
    from soma_ray.storage.fetcher import DiskFullError, URLFetcher
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the kernel then answers EFBIG instead of killing us
    url, size, dest = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))  # the download cannot fit
    try:
        URLFetcher().fetch_file(url, dest, max_bytes=size)
        print(json.dumps({"ok": True}))
    except DiskFullError as err:
        print(json.dumps({"error": str(err), "errno": err.errno}))
""")


def test_a_file_size_limit_mid_download_leaves_no_partial_file(weights: Manifest, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    dest = ModelStore(cache, TINY).cache_path(weights)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, weights.url, str(weights.size), str(dest)],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["errno"] == errno.EFBIG and "\n" not in result["error"]
    assert result["error"] == (
        f"disk full while writing {dest.name} into {dest.parent} (File too large); "
        "free space there or use a folder on a bigger disk"
    )
    assert entries(dest.parent) == []  # no partial file, no entry
    assert_room_again_works(cache, weights)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (a real disk that fills up); skipped where mounting is not permitted."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or mounted.returncode})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_while_caching_leaves_no_entry(weights: Manifest, tiny_disk: Path) -> None:
    cache = tiny_disk / "cache"
    store = ModelStore(cache, TINY)
    filler = tiny_disk / "filler"
    with open(filler, "wb", buffering=0) as handle:  # fill the disk up to less than the weights need
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - weights.size // 2))

    with pytest.raises(ModelUnavailable) as err:
        store.encrypted_bytes(weights, model_id="0xfull")
    text = str(err.value)
    assert "\n" not in text and "No space left on device" in text
    assert f"disk full while caching its weights into {cache / 'weights'}" in text and "scoring.cache_dir" in text
    assert entries(store.weights_dir) == []

    filler.unlink()  # free space, then the same fetch works
    assert_room_again_works(cache, weights)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_no_room_reported_at_fsync_is_disk_full(
    code: int, weights: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fsync(fd: int) -> None:  # NFS and quotas may only say so when the data is flushed
        raise OSError(code, os.strerror(code))

    cache = tmp_path / "cache"
    store = ModelStore(cache, TINY)
    with monkeypatch.context() as patch:
        patch.setattr(fetcher.os, "fsync", fsync)
        with pytest.raises(ModelUnavailable, match=f"disk full while caching its weights .*{os.strerror(code)}"):
            store.encrypted_bytes(weights, model_id="0xfull")
    assert entries(store.weights_dir) == []
    assert_room_again_works(cache, weights)


def test_no_room_at_write_is_not_retried_as_a_network_error(weights: Manifest) -> None:
    class Full(io.BytesIO):
        writes = 0

        def write(self, block: object) -> int:
            Full.writes += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(DiskFullError, match="disk full while writing the download of .*No space left") as err:
        URLFetcher().fetch_into(weights.url, Full())
    assert "\n" not in str(err.value) and err.value.errno == errno.ENOSPC
    assert Full.writes == 1  # one failed write: no download retried into a full disk
