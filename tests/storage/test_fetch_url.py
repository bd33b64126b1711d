"""fetch_url over real HTTP: chunked Range downloads, retries, and one-line failures."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

import soma_ray.storage.fetcher
from soma_ray.storage import BlobNotFoundError, LocalBlobStore, StorageError, fetch_url
from soma_ray.storage.local import BlobHTTPServer
from tests.storage.kit import QuietHandler

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(soma_ray.storage.fetcher, "RETRY_BACKOFF_S", 0.01)  # keep the suite fast


@pytest.fixture
def ranges_sent(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Records the Range header of every request fetch_url makes (still real requests)."""
    sent: list[str | None] = []
    real = soma_ray.storage.fetcher._open

    def spy(request: urllib.request.Request, *args: Any, **kwargs: Any) -> Any:
        sent.append(request.get_header("Range"))
        return real(request, *args, **kwargs)

    monkeypatch.setattr(soma_ray.storage.fetcher, "_open", spy)
    return sent


def test_large_file_is_fetched_in_default_5mib_ranges(
    blob_server: tuple[LocalBlobStore, BlobHTTPServer], ranges_sent: list[str | None]
) -> None:
    store, _ = blob_server
    data = os.urandom(6 * MIB + 123)
    url = store.put("w/big.bin", data)
    assert fetch_url(url) == data
    # The last range ends at the last byte, as the first reply's Content-Range told.
    assert ranges_sent == [f"bytes=0-{5 * MIB - 1}", f"bytes={5 * MIB}-{len(data) - 1}"]


def test_small_chunks_reassemble_exactly(
    blob_server: tuple[LocalBlobStore, BlobHTTPServer], ranges_sent: list[str | None]
) -> None:
    store, _ = blob_server
    data = os.urandom(6 * MIB + 1)
    assert fetch_url(store.put("big.bin", data), chunk_size=MIB) == data
    assert len(ranges_sent) == 7 and ranges_sent[-1] == f"bytes={6 * MIB}-{6 * MIB}"


def test_small_and_empty_files_take_one_request(
    blob_server: tuple[LocalBlobStore, BlobHTTPServer], ranges_sent: list[str | None]
) -> None:
    store, _ = blob_server
    assert fetch_url(store.put("small.bin", b"tiny")) == b"tiny"
    assert fetch_url(store.put("empty.bin", b"")) == b""  # 416 bytes */0 means empty
    assert len(ranges_sent) == 2


def test_server_that_ignores_ranges(serve: Callable[[type[BaseHTTPRequestHandler]], str], tmp_path: Path) -> None:
    data = os.urandom(300_000)
    (tmp_path / "f.bin").write_bytes(data)

    class Plain(SimpleHTTPRequestHandler):  # the stdlib file server answers 200 to Range
        def log_message(self, format: str, *args: object) -> None:
            pass

    base = serve(partial(Plain, directory=str(tmp_path)))  # type: ignore[arg-type]
    assert fetch_url(f"{base}/f.bin", chunk_size=1000) == data


def test_404_is_one_line_and_not_retried(
    blob_server: tuple[LocalBlobStore, BlobHTTPServer], ranges_sent: list[str | None]
) -> None:
    _, server = blob_server
    with pytest.raises(BlobNotFoundError) as info:
        fetch_url(f"{server.url}/missing.bin?X-Amz-Signature=SECRETSIG")
    assert str(info.value) == (
        f"{server.url}/missing.bin returned HTTP 404 Not Found; check the URL and that the blob was uploaded"
    )
    assert len(ranges_sent) == 1


def test_connection_refused() -> None:
    with pytest.raises(StorageError) as info:
        fetch_url("http://user:pw@127.0.0.1:1/x.bin", retries=1)
    message = str(info.value)
    assert message.startswith("download of http://127.0.0.1:1/x.bin failed after 2 attempts: cannot connect")
    assert "pw" not in message and "\n" not in message


def test_transient_errors_are_retried_three_times(serve: Callable[[type[BaseHTTPRequestHandler]], str]) -> None:
    calls: list[int] = []

    class Flaky(QuietHandler):
        def do_GET(self) -> None:
            calls.append(1)
            if len(calls) <= 3:
                self.send_error(503)
                return
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    assert fetch_url(f"{serve(Flaky)}/x") == b"ok"
    assert len(calls) == 4  # one try and three retries


def test_short_body_is_a_size_mismatch(serve: Callable[[type[BaseHTTPRequestHandler]], str]) -> None:
    class Short(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"only ten b")
            self.close_connection = True

    with pytest.raises(StorageError, match=r"failed after 2 attempts: IncompleteRead"):
        fetch_url(f"{serve(Short)}/x", retries=1)


def test_wrong_range_is_detected(serve: Callable[[type[BaseHTTPRequestHandler]], str]) -> None:
    class Stuck(QuietHandler):  # always answers with the first 10 bytes of a 100-byte file
        def do_GET(self) -> None:
            self.send_response(206)
            self.send_header("Content-Range", "bytes 0-9/100")
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"0123456789")

    with pytest.raises(StorageError, match=r"wrong range while downloading \(wanted bytes 10-19 of 100\)"):
        fetch_url(f"{serve(Stuck)}/x", chunk_size=10)


def test_only_http_urls() -> None:
    with pytest.raises(StorageError, match="only http:// and https://"):
        fetch_url("file:///etc/passwd")
