"""BlobHTTPServer over real sockets: GET, HEAD, Range (206/416), 404, no listing, no escape."""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from soma_ray.storage import BlobHTTPServer, LocalBlobStore, StorageError
from soma_ray.storage.local import parse_range

Served = tuple[LocalBlobStore, BlobHTTPServer]
DATA = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable mod 256


def _raw(server: BlobHTTPServer, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with the path sent verbatim (urllib would normalise '..' away)."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_url_and_get(blob_server: Served) -> None:
    store, server = blob_server
    assert server.url.startswith("http://127.0.0.1:") and int(server.url.rsplit(":", 1)[1]) > 0
    url = store.put("models/m 1.bin", DATA)
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == str(len(DATA))
        assert response.headers["Accept-Ranges"] == "bytes"
        assert response.read() == DATA


def test_head_sends_headers_only(blob_server: Served) -> None:
    store, server = blob_server
    store.put("a.bin", DATA)
    status, headers, body = _raw(server, "HEAD", "/a.bin")
    assert (status, headers["Content-Length"], body) == (200, str(len(DATA)), b"")


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=10-19", 10, 19), ("bytes=10240-", None, None), ("bytes=10000-", 10000, 10239),
     ("bytes=-5", 10235, 10239), ("bytes=10230-99999", 10230, 10239), ("bytes=-99999", 0, 10239)],
)
def test_ranges(blob_server: Served, header: str, start: int | None, end: int | None) -> None:
    store, server = blob_server
    store.put("r.bin", DATA)
    status, headers, body = _raw(server, "GET", "/r.bin", {"Range": header})
    if start is None or end is None:
        assert status == 416
        assert headers["Content-Range"] == f"bytes */{len(DATA)}"
        return
    assert status == 206
    assert headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert headers["Content-Length"] == str(end - start + 1)
    assert body == DATA[start : end + 1]


def test_range_on_head_and_unsatisfiable_suffix(blob_server: Served) -> None:
    store, server = blob_server
    store.put("r.bin", DATA)
    status, headers, body = _raw(server, "HEAD", "/r.bin", {"Range": "bytes=0-99"})
    assert (status, headers["Content-Range"], headers["Content-Length"], body) == (206, "bytes 0-99/10240", "100", b"")
    assert _raw(server, "GET", "/r.bin", {"Range": "bytes=-0"})[0] == 416
    store.put("empty.bin", b"")
    status, headers, _ = _raw(server, "GET", "/empty.bin", {"Range": "bytes=0-10"})
    assert (status, headers["Content-Range"]) == (416, "bytes */0")


def test_multi_and_malformed_ranges_get_the_whole_file(blob_server: Served) -> None:
    store, server = blob_server
    store.put("r.bin", DATA)
    for header in ("bytes=0-1,5-6", "items=0-3", "bytes=9-3", "bytes=-"):
        status, _, body = _raw(server, "GET", "/r.bin", {"Range": header})
        assert (status, body) == (200, DATA), header


def test_missing_directories_and_traversal_are_404(blob_server: Served, tmp_path: Path) -> None:
    store, server = blob_server
    store.put("dir/a.bin", b"x")
    (tmp_path / "secret.txt").write_text("do not serve")  # sits next to the served root
    for path in ("/nope.bin", "/", "/dir", "/dir/", "/../secret.txt", "/dir/../../secret.txt",
                 "/%2e%2e/secret.txt", "/dir%2f..%2f..%2fsecret.txt", "//etc/passwd"):
        status, _, body = _raw(server, "GET", path)
        assert status == 404, path
        assert b"do not serve" not in body and b"a.bin" not in body
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{server.url}/nope.bin", timeout=5)
    info.value.close()
    assert info.value.code == 404


def test_query_strings_are_ignored(blob_server: Served) -> None:
    store, server = blob_server
    store.put("q.bin", b"q")
    assert _raw(server, "GET", "/q.bin?x=1")[2] == b"q"


def test_stop_closes_the_port(tmp_path: Path) -> None:
    with BlobHTTPServer(tmp_path) as server:
        (tmp_path / "f").write_bytes(b"f")
        assert urllib.request.urlopen(f"{server.url}/f", timeout=5).read() == b"f"
        url = server.url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/f", timeout=2)


def test_bad_root_and_busy_port(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="not a directory"):
        BlobHTTPServer(tmp_path / "missing")
    with BlobHTTPServer(tmp_path) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with pytest.raises(StorageError, match=f"cannot listen on 127.0.0.1:{port}"):
            BlobHTTPServer(tmp_path, port=port)


def test_server_stop_without_start_does_not_hang(tmp_path: Path) -> None:
    BlobHTTPServer(tmp_path).stop()


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [(None, 10, None), ("bytes=0-0", 10, (0, 0)), ("bytes=5-", 10, (5, 9)), ("bytes=-3", 10, (7, 9)),
     ("bytes=10-", 10, "unsatisfiable"), ("bytes=-1", 0, "unsatisfiable"), ("bytes = 1 - 2", 10, (1, 2)),
     ("bytes=3-1", 10, None), ("bytes=0-1,3-4", 10, None)],
)
def test_parse_range(header: str | None, size: int, expected: object) -> None:
    assert parse_range(header, size) == expected


def test_large_file_streams(blob_server: Served) -> None:
    store, server = blob_server
    data = os.urandom(3 * 1024 * 1024 + 17)  # several 1 MiB write blocks plus a tail
    url = store.put("big.bin", data)
    assert urllib.request.urlopen(url, timeout=10).read() == data
