"""Hostile URLs and servers: every download is bounded, timed and policy-checked.

Each test runs a REAL HTTP server on 127.0.0.1 (http.server in a thread), no mocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from soma_models.v1.torch import ModelConfig

import soma_ray.storage.fetcher
from soma_ray.chain.types import Manifest
from soma_ray.protocol.commitments import commitment
from soma_ray.scoring.store import ModelStore, ModelUnavailable
from soma_ray.storage import StorageError, URLFetcher
from soma_ray.storage.fetcher import (
    CHAIN_POLICY,
    FetchPolicy,
    RefusedURLError,
    TooLargeError,
    UnsupportedURLError,
    check_host,
    fetch_url,
    policy_for,
)
from tests.storage.kit import QuietHandler

TINY = ModelConfig(dropout_rate=0.0, embedding_dim=16, pwff_hidden_dim=32, num_layers=2, num_heads=4)
FAST = replace(CHAIN_POLICY, timeout=0.5, deadline=2.0, retries=0)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(soma_ray.storage.fetcher, "RETRY_BACKOFF_S", 0.01)


def one_line(err: pytest.ExceptionInfo[Exception]) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "weights").iterdir() if not p.name.endswith(".lock"))


# -- schemes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["file:///etc/passwd", "file:///dev/zero", "s3://bucket/w.enc"])
def test_manifest_with_a_local_url_is_refused_on_a_real_network(url: str, tmp_path: Path) -> None:
    manifest = Manifest(url, commitment(b"w"), 1000, None)
    store = ModelStore(tmp_path / "cache", TINY, policy=policy_for("testnet"))
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as err:
        store.encrypted_bytes(manifest, model_id="0xevil")
    text = one_line(err)
    assert "0xevil" in text and "only http:// and https:// URLs are allowed here" in text
    assert time.monotonic() - started < 1.0
    assert cache_files(tmp_path / "cache") == []
    assert policy_for("localnet") == CHAIN_POLICY and "file" in policy_for("sim").schemes


def test_dev_zero_is_never_read_even_where_file_urls_are_allowed() -> None:
    with pytest.raises(StorageError, match="is not a regular file") as err:
        URLFetcher().fetch("file:///dev/zero", max_bytes=10)
    one_line(err)


# -- endless, lying and slow servers -----------------------------------------------------------


def test_endless_body_stops_at_the_cap(serve: Callable[[type[BaseHTTPRequestHandler]], str]) -> None:
    class Endless(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)  # ignores Range, no Content-Length, never ends
            self.end_headers()
            block = b"\0" * 65536
            try:
                while True:
                    self.wfile.write(block)
            except OSError:
                pass

    started = time.monotonic()
    with pytest.raises(TooLargeError, match=r"sent more than the 1048576 bytes allowed") as err:
        fetch_url(f"{serve(Endless)}/x", max_bytes=1024 * 1024)
    one_line(err)
    assert time.monotonic() - started < 5


def test_endless_body_into_the_store_leaves_the_cache_untouched(
    serve: Callable[[type[BaseHTTPRequestHandler]], str], tmp_path: Path
) -> None:
    class Endless(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"\1" * 65536)
            except OSError:
                pass

    cache = tmp_path / "cache"
    store = ModelStore(cache, TINY, policy=CHAIN_POLICY)
    (cache / "weights" / "keep-me").write_bytes(b"earlier")
    manifest = Manifest(f"{serve(Endless)}/w.enc", commitment(b"w"), 50_000, None)
    with pytest.raises(ModelUnavailable, match="larger than the manifest says") as err:
        store.encrypted_bytes(manifest, model_id="0xendless")
    assert "0xendless" in one_line(err)
    assert cache_files(cache) == ["keep-me"]  # no partial file, nothing else touched
    assert (cache / "weights" / "keep-me").read_bytes() == b"earlier"


@pytest.mark.parametrize("content_range", ["bytes 0-99/99999999999999", "bytes 0-4999999/5000000"])
def test_lying_content_range_is_refused(
    serve: Callable[[type[BaseHTTPRequestHandler]], str], content_range: str
) -> None:
    class Liar(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(206)
            self.send_header("Content-Range", content_range)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x" * 100)

    with pytest.raises(StorageError) as err:
        fetch_url(f"{serve(Liar)}/x", max_bytes=1_000_000)
    text = one_line(err)
    assert ("announces" in text and "more than the 1000000 allowed" in text) or "wrong range" in text


def test_range_body_longer_than_announced_is_refused(serve: Callable[[type[BaseHTTPRequestHandler]], str]) -> None:
    class Overlong(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(206)
            self.send_header("Content-Range", "bytes 0-9/10")  # claims 10 bytes, sends forever
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"y" * 65536)
            except OSError:
                pass

    with pytest.raises(StorageError, match="more bytes than the range it announced") as err:
        fetch_url(f"{serve(Overlong)}/x", max_bytes=1_000_000)
    one_line(err)


def dripping(pause_s: float, length: int = 1000) -> type[QuietHandler]:
    """A server announcing `length` bytes and sending one every `pause_s` seconds."""

    class Drip(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            try:
                for _ in range(length):
                    self.wfile.write(b"d")
                    self.wfile.flush()
                    time.sleep(pause_s)
            except OSError:
                pass

    return Drip


def test_slow_drip_hits_the_read_timeout(serve: Callable[[type[BaseHTTPRequestHandler]], str]) -> None:
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"read timed out \(no data for 0.5 s\)") as err:
        fetch_url(f"{serve(dripping(pause_s=1.0))}/x", policy=FAST)
    one_line(err)
    assert time.monotonic() - started < 5


def test_slow_but_steady_drip_hits_the_request_deadline(serve: Callable[[type[BaseHTTPRequestHandler]], str]) -> None:
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"longer than its 1 s deadline") as err:
        fetch_url(f"{serve(dripping(pause_s=0.1))}/x", policy=replace(FAST, deadline=1.0))  # under the read timeout
    one_line(err)
    assert time.monotonic() - started < 5


# -- redirects and hosts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        ("file:///etc/passwd", "redirects to a file:// URL"),
        ("http://169.254.169.254/latest/meta-data/", "link-local or cloud-metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "link-local or cloud-metadata"),
        ("http://[fe80::1]/x", "link-local or cloud-metadata"),
    ],
)
def test_redirects_to_other_schemes_and_metadata_hosts_are_refused(
    serve: Callable[[type[BaseHTTPRequestHandler]], str], location: str, problem: str
) -> None:
    class Redirect(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

    started = time.monotonic()
    with pytest.raises(RefusedURLError, match=problem) as err:
        fetch_url(f"{serve(Redirect)}/w.enc", policy=FAST)
    one_line(err)
    assert time.monotonic() - started < 2


def test_redirect_to_an_allowed_http_host_is_followed(serve: Callable[[type[BaseHTTPRequestHandler]], str]) -> None:
    class Target(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    target = serve(Target)

    class Redirect(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"{target}/x")
            self.send_header("Content-Length", "0")
            self.end_headers()

    assert fetch_url(f"{serve(Redirect)}/x", policy=FAST) == b"ok"


def test_link_local_hosts_are_refused_before_any_request_unless_allowed() -> None:
    for url in ("http://169.254.169.254/", "http://169.254.1.2:8080/x", "http://[fe80::1]/", "http://[fd00:ec2::254]/"):
        with pytest.raises(RefusedURLError, match="link-local or cloud-metadata"):
            check_host(url, CHAIN_POLICY)
        check_host(url, replace(CHAIN_POLICY, allow_link_local=True))
    check_host("http://127.0.0.1:1/x", CHAIN_POLICY)  # loopback stays allowed (local networks, tests)
    check_host("http://localhost:1/x", CHAIN_POLICY)


def test_a_name_rebound_to_a_metadata_address_after_the_check_is_refused_at_connect(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name resolves to a public address for `check_host` and to a metadata one
    when the connection is made. The address connected to is checked too, before a byte is sent.
    (127.0.0.2 stands in for 169.254.169.254, which cannot listen here.)"""
    import ipaddress
    import socket
    import threading
    from http.server import ThreadingHTTPServer

    asked: list[str] = []

    class Metadata(QuietHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"secret")

    server = ThreadingHTTPServer(("127.0.0.2", 0), Metadata)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    port = server.server_address[1]
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34"])  # the first answer (check_host's) is public; every later one the metadata host

    def rebinding(host: str, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        if host != "rebind.test":
            return real(host, *args, **kwargs)  # type: ignore[arg-type]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers, "127.0.0.2"), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(soma_ray.storage.fetcher, "METADATA_ADDRESSES",
                        soma_ray.storage.fetcher.METADATA_ADDRESSES | {ipaddress.ip_address("127.0.0.2")})
    try:
        with pytest.raises(RefusedURLError) as err:
            fetch_url(f"http://rebind.test:{port}/latest/meta-data/", policy=FAST)
        assert "connected to a link-local or cloud-metadata address (127.0.0.2)" in one_line(err)
        assert asked == []  # nothing was sent to it
        allowed = replace(FAST, allow_link_local=True)  # the check is the policy's, not a broken socket
        assert fetch_url(f"http://rebind.test:{port}/latest/meta-data/", policy=allowed) == b"secret"
    finally:
        server.shutdown()
        server.server_close()


# -- manifest size claims ------------------------------------------------------------------------


def test_ten_gigabyte_manifest_is_refused_before_downloading(
    serve: Callable[[type[BaseHTTPRequestHandler]], str], tmp_path: Path
) -> None:
    requests: list[str] = []

    class Counting(QuietHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_error(500)

    manifest = Manifest(f"{serve(Counting)}/w.enc", commitment(b"w"), 10 * 1024**3, None)
    store = ModelStore(tmp_path / "cache", TINY, policy=CHAIN_POLICY)
    with pytest.raises(ModelUnavailable) as err:
        store.encrypted_bytes(manifest, model_id="0xhuge")
    text = one_line(err)
    assert "0xhuge" in text and "10737418240 bytes" in text and f"at most {store.max_weights_bytes}" in text
    assert requests == []
    assert cache_files(tmp_path / "cache") == []


def test_policy_cap_applies_to_every_fetch(serve: Callable[[type[BaseHTTPRequestHandler]], str]) -> None:
    class Big(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "5000")
            self.end_headers()
            self.wfile.write(b"z" * 5000)

    url = f"{serve(Big)}/x"
    with pytest.raises(TooLargeError, match="announces 5000 bytes, more than the 4096 allowed"):
        URLFetcher(policy=FetchPolicy(max_bytes=4096)).fetch(url)
    assert len(URLFetcher(policy=FetchPolicy(max_bytes=5000)).fetch(url)) == 5000


def test_unsupported_scheme_is_an_unsupported_url_error() -> None:
    with pytest.raises(UnsupportedURLError):
        fetch_url("file:///etc/passwd")
