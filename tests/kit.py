"""What several test areas share (area helpers live in `tests/<area>/kit.py`)."""

from __future__ import annotations

import http.client
import os
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3  # type: ignore[import-untyped]
from hypothesis import HealthCheck, settings

# Dummy credentials: moto without auth accepts anything, but boto3 needs some to sign.
DUMMY_KEY_ID = "AKIATESTKEYID0000000"
DUMMY_SECRET = "dummy-secret-Zx9vQ2pL7mN4"


def boto_client(service: str, endpoint: str, key_id: str = DUMMY_KEY_ID, secret: str = DUMMY_SECRET) -> Any:
    """A plain boto3 client for the test's own checks and set-up (never the code under test's)."""
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


# -- a fault-injecting HTTP proxy ---------------------------------------------------------------


@dataclass
class Fault:
    """What the proxy does to matching requests instead of forwarding them faithfully.

    `action`: an HTTP status (answered with an S3-style XML error), "stall" (read the request,
    then answer nothing until released), "drop" (read half the body, then close the connection)
    or "garble" (forward, then flip every byte of the answer's body). A request matches when its
    method is `method` and `match` is in its path and query; `times` bounds how often (None: until
    cleared).
    """

    action: int | str
    method: str = "PUT"
    match: str = ""
    times: int | None = None


class FaultProxy:
    """A real HTTP server on 127.0.0.1 that forwards every request to `upstream` (e.g. moto)
    unless an injected `Fault` matches it. `seen` logs (method, path, what was done)."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults: list[Fault] = []
        self.seen: list[tuple[str, str, str]] = []
        self.release = threading.Event()  # ends every stall (set on stop)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def count(self, method: str, match: str = "", outcome: str | None = None) -> int:
        return sum(
            1 for m, p, o in self.seen if m == method and match in p and (outcome is None or o == outcome)
        )

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and fault.match in path and fault.times != 0:
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers boto3's "Expect: 100-continue" at once

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _body(self, limit: int | None = None) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length if limit is None else min(limit, length))

            def _handle(self) -> None:
                fault = proxy._fault_for(self.command, self.path)
                action = "forward" if fault is None else str(fault.action)
                proxy.seen.append((self.command, self.path, action))
                if fault is not None and fault.action == "drop":
                    self._body(int(self.headers.get("Content-Length") or 0) // 2)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = self._body()
                if fault is not None and fault.action == "stall":
                    proxy.release.wait(30)
                    self.close_connection = True
                    return
                if fault is not None and isinstance(fault.action, int):
                    xml = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>Injected{fault.action}</Code>"
                           "<Message>injected by the test proxy</Message></Error>").encode()
                    self._answer(fault.action, [("Content-Type", "application/xml")], xml)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in ("expect", "transfer-encoding", "connection", "content-length")}
                    conn.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST")
                                 else None, headers=headers)
                    response = conn.getresponse()
                    answer = response.read()
                    kept = [(k, v) for k, v in response.getheaders()
                            if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date")]
                finally:
                    conn.close()
                if fault is not None and fault.action == "garble":
                    answer = bytes(b ^ 0xFF for b in answer)
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self._answer(response.status, kept, answer, length)

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes,
                        length: str | None = None) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", length or str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        return Handler
# Fuzzing (hypothesis): FUZZ_EXAMPLES scales every fuzz test; CANARY is what SOMA_SECRET_KEY holds in them.
CANARY = "canary-secret-0123456789abcdef"
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def fuzz(share: float) -> settings:
    """FUZZ with a share of its examples, for tests whose examples are slow (a subprocess, a dataset load)."""
    return settings(FUZZ, max_examples=max(3, int(FUZZ_EXAMPLES * share)))


def one_clear_line(error: Exception) -> str:
    """The error's text, checked: one line, no traceback, no canary secret."""
    text = str(error)
    assert text and "\n" not in text and "\r" not in text, text
    assert "Traceback" not in text and CANARY not in text
    return text


def load_script(path: Path) -> Any:
    """A script of bench/ imported as a module (its functions, on the test session's Ray)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
