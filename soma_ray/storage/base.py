"""The blob store contract, its one error type, and a ranged HTTP downloader.

Every store (S3, local directory) hands out public URLs; anyone (a validator, a scorer on
another machine) reads them back with plain HTTP through `fetch_url`.
"""

from __future__ import annotations

import http.client
import re
import time
import urllib.error
import urllib.request
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from soma_ray.errors import SomaRayError

__all__ = [
    "BlobNotFoundError",
    "BlobStore",
    "StorageError",
    "check_key",
    "fetch_url",
    "redact_url",
]

DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024
RETRY_BACKOFF_S = 0.25  # first pause between attempts; doubles each retry, capped at 2 s


class StorageError(SomaRayError):
    """A storage failure described in one line: what is wrong and what to do.

    Messages are built by this package from names and codes only, never from secrets.
    """

    def __init__(self, message: str) -> None:
        # Collapse whitespace so the message is always one line, whatever was interpolated.
        super().__init__(" ".join(str(message).split()))


class BlobNotFoundError(StorageError):
    """The key (or URL) names nothing; callers may treat this as a cache miss."""


@runtime_checkable
class BlobStore(Protocol):
    """Where data and encrypted weights go; `put` returns the URL others download from."""

    def put(self, key: str, data: bytes) -> str: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def url_for(self, key: str) -> str: ...

    def delete(self, key: str) -> None: ...


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative 'a/b/c' path, else raise StorageError.

    Both stores use the same rule so a key that works locally also works on S3, and no
    key can climb out of a directory or a URL path.
    """
    if not isinstance(key, str) or not key:
        raise StorageError(f"invalid blob key {key!r}: use a non-empty relative path such as 'weights/abc.bin'")
    parts = key.split("/")
    bad = (
        key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(part in ("", ".", "..") for part in parts)
    )
    if bad:
        raise StorageError(f"invalid blob key {key!r}: no leading '/', no '..' or '.' or empty segments, no backslashes")
    return key


def redact_url(url: str) -> str:
    """The URL without user:password or query string (presigned URLs carry signatures)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "<unparsable URL>"


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_CONTENT_RANGE_UNSATISFIED = re.compile(r"bytes\s+\*/(\d+)")
# Client errors that will not go away by asking again; everything else is retried.
_NO_RETRY = {400, 401, 403, 404, 405, 410, 416}


class _Fatal(Exception):
    """Internal: stop retrying and raise this StorageError."""

    def __init__(self, error: StorageError) -> None:
        self.error = error


def _range_get(
    url: str, start: int, end: int, timeout: float
) -> tuple[int, bytes, int | None, int | None]:
    """One GET of bytes start..end; returns (status, body, range start, total size)."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-{end}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        status: int = response.status
        declared = response.headers.get("Content-Length")
        body: bytes = response.read()
        if declared is not None and int(declared) != len(body):
            raise http.client.IncompleteRead(body, int(declared) - len(body))
        if status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
            if match is None:
                raise _Fatal(StorageError(
                    f"{redact_url(url)} answered 206 without a usable Content-Range; "
                    "download it with a plain HTTP file server or S3 URL"
                ))
            total = None if match.group(3) == "*" else int(match.group(3))
            return status, body, int(match.group(1)), total
        return status, body, None, len(body)


def _with_retries(
    url: str, start: int, end: int, timeout: float, retries: int
) -> tuple[int, bytes, int | None, int | None]:
    shown = redact_url(url)
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(RETRY_BACKOFF_S * 2 ** (attempt - 1), 2.0))
        try:
            return _range_get(url, start, end, timeout)
        except _Fatal as fatal:
            raise fatal.error from None
        except urllib.error.HTTPError as err:
            err.close()  # it holds the open response
            if err.code == 416 and start == 0:
                # An empty object cannot satisfy "bytes=0-N"; the server says so via */0.
                match = _CONTENT_RANGE_UNSATISFIED.fullmatch(err.headers.get("Content-Range", "").strip())
                if match and match.group(1) == "0":
                    return 200, b"", None, 0
            if err.code == 404:
                raise BlobNotFoundError(
                    f"{shown} returned HTTP 404 Not Found; "
                    "check the URL and that the blob was uploaded"
                ) from None
            if err.code in _NO_RETRY:
                raise StorageError(
                    f"{shown} returned HTTP {err.code} {err.reason}; "
                    "check the URL and that the blob is publicly readable"
                ) from None
            last = f"HTTP {err.code} {err.reason}"
        except urllib.error.URLError as err:
            last = f"cannot connect ({err.reason})"
        except (OSError, http.client.HTTPException) as err:
            last = f"{type(err).__name__} ({err})" if str(err) else type(err).__name__
    raise StorageError(
        f"download of {shown} failed after {retries + 1} attempts: {last}; "
        "check the server is up and reachable"
    )


def fetch_url(
    url: str,
    *,
    timeout: float = 30.0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    retries: int = 3,
) -> bytes:
    """Download `url` over HTTP(S), in Range chunks of `chunk_size` when it is larger.

    The first request asks for the first chunk; a 206 reply tells the total size, a 200
    reply means the server ignores ranges and sent everything. Each request is retried
    `retries` times on connection errors and 5xx; 4xx fail at once.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise StorageError(f"cannot download {redact_url(url)!r}: only http:// and https:// URLs are supported")
    if chunk_size <= 0:
        raise StorageError(f"chunk_size must be positive, got {chunk_size}")
    shown = redact_url(url)
    status, first, _, total = _with_retries(url, 0, chunk_size - 1, timeout, retries)
    if status != 206:
        return first  # whole body in one reply (server ignores Range, or empty object)
    if total is None:
        raise StorageError(
            f"{shown} did not tell its size (Content-Range */*); "
            "cannot download it in ranges"
        )
    if len(first) != min(chunk_size, total):
        raise StorageError(
            f"{shown}: size mismatch, first range held {len(first)} bytes of {total}; "
            "retry the download"
        )
    buffer = bytearray(first)
    while len(buffer) < total:
        start = len(buffer)
        end = min(start + chunk_size, total) - 1
        status, body, got_start, got_total = _with_retries(url, start, end, timeout, retries)
        if status != 206 or got_start != start or got_total != total or len(body) != end - start + 1:
            raise StorageError(
                f"{shown} changed or answered a wrong range while downloading (wanted bytes {start}-{end} of {total}); "
                "retry the download"
            )
        buffer += body
    if len(buffer) != total:
        raise StorageError(
            f"{shown}: size mismatch, got {len(buffer)} bytes but the server announced {total}; "
            "retry the download"
        )
    return bytes(buffer)
