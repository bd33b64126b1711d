"""A directory as a blob store, and a small HTTP server that serves it.

Used with the simulated network and localnet: blobs land in a directory and are read back
over real HTTP (with Range support, so `fetch_url` behaves as it does against S3).
"""

from __future__ import annotations

import os
import re
import socketserver
import tempfile
import threading
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, cast
from urllib.parse import quote, unquote

from soma_ray.storage.base import check_key
from soma_ray.storage.errors import BlobNotFoundError, StorageError

__all__ = ["BlobHTTPServer", "LocalBlobStore"]


def _resolve_under(root: Path, key: str) -> Path:
    """root/key, refusing keys that escape root (also through symlinks)."""
    path = root.joinpath(*check_key(key).split("/"))
    if not path.resolve().is_relative_to(root):
        raise StorageError(f"invalid blob key {key!r}: it leads outside {root}")
    return path


class LocalBlobStore:
    """Blobs as files under `root`; URLs are `base_url/key` (e.g. a BlobHTTPServer's url)."""

    def __init__(self, root: Path | str, base_url: str | None = None) -> None:
        self.root = Path(root).resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(
                f"cannot create blob directory {self.root}: {err.strerror}; "
                "pick a writable path"
            ) from None
        self.base_url = base_url.rstrip("/") if base_url else None

    def __repr__(self) -> str:
        return f"LocalBlobStore(root={str(self.root)!r}, base_url={self.base_url!r})"

    def path_for(self, key: str) -> Path:
        return _resolve_under(self.root, key)

    def url_for(self, key: str) -> str:
        path = self.path_for(key)
        if self.base_url is None:
            return path.as_uri()  # no server: only this machine can read it
        return f"{self.base_url}/{quote(key, safe='/')}"

    def put(self, key: str, data: bytes) -> str:
        path = self.path_for(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write a temp file beside the target and rename it over: readers (and the
            # HTTP server) see the old blob or the new one, never half of one.
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, 0o644)  # mkstemp makes 0600; blobs are public by design
                os.replace(tmp, path)
            except BaseException:
                with suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as err:
            raise StorageError(
                f"cannot write blob {key!r} under {self.root}: {err.strerror}; "
                "check the directory is writable and has space"
            ) from None
        return self.url_for(key)

    def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFoundError(
                f"no blob {key!r} under {self.root}; "
                "check the key or upload it first"
            ) from None
        except OSError as err:
            raise StorageError(f"cannot read blob {key!r} under {self.root}: {err.strerror}") from None

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        if path.is_file():  # deleting a missing blob is not an error (as on S3)
            with suppress(FileNotFoundError):
                path.unlink()


_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")
_Unsatisfiable = Literal["unsatisfiable"]


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | _Unsatisfiable:
    """(start, end) inclusive for one `bytes=` range; None means serve the whole file.

    Malformed and multi-range headers are ignored (RFC 9110 allows it), which makes a
    client fall back to the full body instead of failing.
    """
    match = _RANGE.fullmatch(header) if header else None
    if match is None or (not match[1] and not match[2]):
        return None
    if not match[1]:  # bytes=-n: the last n bytes
        suffix = int(match[2])
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(match[1])
    if match[2] and int(match[2]) < start:
        return None  # 'bytes=9-3' is invalid, so ignored
    end = int(match[2]) if match[2] else size - 1
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


class _BlobHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for clients that reuse connections
    server_version = "soma-ray-blobs"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would drown job logs

    def _file(self) -> Path | None:
        root = cast(BlobHTTPServer, self.server).root
        # Not urlsplit: it would read '//host/x' as a network location.
        raw = self.path.split("?", 1)[0].split("#", 1)[0]
        try:
            path = _resolve_under(root, unquote(raw).lstrip("/"))
        except StorageError:
            return None
        return path if path.is_file() else None  # directories: 404, never a listing

    def _serve(self, send_body: bool) -> None:
        path = self._file()
        try:
            handle = path.open("rb") if path is not None else None
        except OSError:
            handle = None
        if handle is None:
            self.send_error(404, "no such blob")
            return
        with handle:
            size = os.fstat(handle.fileno()).st_size
            wanted = parse_range(self.headers.get("Range"), size)
            if wanted == "unsatisfiable":
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start, end = wanted if wanted is not None else (0, size - 1)
            self.send_response(206 if wanted is not None else 200)
            if wanted is not None:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            if send_body:
                handle.seek(start)
                remaining = end - start + 1
                with suppress(BrokenPipeError, ConnectionResetError):  # client went away
                    while remaining > 0:
                        block = handle.read(min(remaining, 1 << 20))
                        if not block:
                            break  # file shrank under us; the client sees a short body
                        self.wfile.write(block)
                        remaining -= len(block)


class BlobHTTPServer(ThreadingHTTPServer):
    """Serves files under `root` with GET, HEAD and single Range requests; no listings."""

    daemon_threads = True  # a stuck client must not keep the process alive

    def __init__(self, root: Path | str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise StorageError(
                f"cannot serve {self.root}: not a directory; "
                "create it or pass the blob store's root"
            )
        self._thread: threading.Thread | None = None
        try:
            super().__init__((host, port), _BlobHandler)
        except OSError as err:
            raise StorageError(
                f"cannot listen on {host}:{port}: {err.strerror}; "
                "pick another port"
            ) from None

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can hang offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    @property
    def url(self) -> str:
        host = self.server_name if self.server_name not in ("0.0.0.0", "") else "127.0.0.1"
        return f"http://{host}:{self.server_port}"

    def start(self) -> Self:
        if self._thread is None:
            # A short poll interval makes stop() return promptly (the default is 0.5 s).
            self._thread = threading.Thread(
                target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="blob-http", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()  # only valid while serve_forever runs, hence the guard
            self._thread.join()
            self._thread = None
        self.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
