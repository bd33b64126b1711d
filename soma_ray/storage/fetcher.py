"""Read a URL: the one downloader for http(s)://, s3:// and file:// URLs.

Everything that downloads bytes by URL (model weights, warm starts, read-back checks, the
simulated network) comes through `URLFetcher`, so what may be read (which schemes; later:
how much) is decided here, once. `fetch_url` is the http(s)-only fetcher: what anything read
from a real network uses.

- http(s): GETs in Range chunks of `chunk_size`, each retried `retries` times on connection
  errors and 5xx; 4xx fail at once. A 206 reply tells the total size; a 200 reply means the
  server ignores ranges and sent everything.
- s3://bucket/key: one GetObject at `s3_endpoint_url` (else S3_ENDPOINT_URL), signed with the
  S3_*/AWS_* credentials when there are any, else anonymous.
- file://: a local file.

Every failure is a one-line StorageError (BlobNotFoundError when nothing is there,
UnsupportedURLError for a scheme the fetcher does not read), without URL credentials.
"""

from __future__ import annotations

import http.client
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from soma_ray.storage.errors import BlobNotFoundError, StorageError, redact_url
from soma_ray.storage.s3_client import (
    ACCESS_KEY_ENV,
    ENDPOINT_ENV,
    REGION_ENV,
    SECRET_KEY_ENV,
    error_code,
    first_env,
    s3_client,
)

__all__ = [
    "ALL_SCHEMES",
    "DEFAULT_CHUNK_SIZE",
    "HTTP_SCHEMES",
    "URLFetcher",
    "UnsupportedURLError",
    "fetch",
    "fetch_url",
]

DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024  # range requests above 5 MiB, as the official downloader
DEFAULT_TIMEOUT_S = 30.0  # per request
DEFAULT_RETRIES = 3
RETRY_BACKOFF_S = 0.25  # first pause between attempts; doubles each retry, capped at 2 s

HTTP_SCHEMES = ("http", "https")
ALL_SCHEMES = ("http", "https", "s3", "file")


class UnsupportedURLError(StorageError):
    """The URL's scheme is not one this fetcher reads."""


class URLFetcher:
    """Downloads URLs of the allowed `schemes`; holds its S3 client between calls."""

    def __init__(
        self,
        *,
        schemes: Collection[str] = ALL_SCHEMES,
        s3_endpoint_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        retries: int = DEFAULT_RETRIES,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        unknown = sorted(set(schemes) - set(ALL_SCHEMES))
        if unknown:
            raise ValueError(f"cannot fetch {', '.join(unknown)} URLs; known schemes: {', '.join(ALL_SCHEMES)}")
        self.schemes = tuple(s for s in ALL_SCHEMES if s in schemes)
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.retries = retries
        self.environ = environ
        self.s3_endpoint_url = s3_endpoint_url or first_env(environ, *ENDPOINT_ENV)
        self._s3_client: Any = None

    def __repr__(self) -> str:
        return f"URLFetcher(schemes={self.schemes!r}, s3_endpoint_url={self.s3_endpoint_url!r})"

    def fetch(self, url: str) -> bytes:
        """The bytes at `url`, unverified."""
        scheme = urlsplit(url).scheme.lower()
        if scheme not in self.schemes:
            raise UnsupportedURLError(
                f"cannot download {redact_url(url)!r}: only {_listing(self.schemes)} URLs are supported"
            )
        if scheme == "s3":
            return self._fetch_s3(url)
        if scheme == "file":
            return _fetch_file(url)
        return _fetch_http(url, self.timeout, self.chunk_size, self.retries)

    def _fetch_s3(self, url: str) -> bytes:
        parts = urlsplit(url)
        bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
        if not bucket or not key:
            raise StorageError(f"S3 URL {redact_url(url)!r} must look like s3://bucket/key")
        client = self._s3()
        try:
            response = client.get_object(Bucket=bucket, Key=key)
            body: bytes = response["Body"].read()
        except Exception as err:  # noqa: BLE001 - botocore raises many kinds; all become one line
            raise _s3_read_error(err, bucket, key) from None
        return body

    def _s3(self) -> Any:
        """The S3 client, made on first use: signed with S3_*/AWS_* credentials when present."""
        if self._s3_client is None:
            self._s3_client = s3_client(
                endpoint_url=self.s3_endpoint_url,
                region=first_env(self.environ, *REGION_ENV) or "us-east-1",
                access_key_id=first_env(self.environ, *ACCESS_KEY_ENV),
                secret_access_key=first_env(self.environ, *SECRET_KEY_ENV),
                signing="if-credentials",
                max_attempts=self.retries + 1,
            )
        return self._s3_client


def fetch(url: str, *, s3_endpoint_url: str | None = None) -> bytes:
    """The bytes at an http(s)://, s3:// or file:// URL, unverified (one-off `URLFetcher`)."""
    return URLFetcher(s3_endpoint_url=s3_endpoint_url).fetch(url)


def fetch_url(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    retries: int = DEFAULT_RETRIES,
) -> bytes:
    """Download an http:// or https:// `url` (any other scheme is an UnsupportedURLError)."""
    return URLFetcher(schemes=HTTP_SCHEMES, timeout=timeout, chunk_size=chunk_size, retries=retries).fetch(url)


def _listing(schemes: tuple[str, ...]) -> str:
    """('http', 'https', 's3') → 'http://, https:// and s3://'."""
    names = [f"{s}://" for s in schemes]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


# -- file:// ------------------------------------------------------------------------------------


def _fetch_file(url: str) -> bytes:
    shown = redact_url(url)
    path = Path(urllib.request.url2pathname(unquote(urlsplit(url).path)))
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BlobNotFoundError(f"no file at {shown}") from None
    except OSError as err:
        raise StorageError(f"cannot read {shown} ({err.strerror})") from None


# -- s3:// --------------------------------------------------------------------------------------


def _s3_read_error(err: Exception, bucket: str, key: str) -> StorageError:
    """One line for an S3 read failure, from error codes only."""
    code = error_code(err)
    where = f"s3://{bucket}/{key}"
    if code in ("404", "NoSuchKey", "NotFound"):
        return BlobNotFoundError(f"{where} does not exist; check the manifest URL")
    if code == "NoSuchBucket":
        return StorageError(f"bucket {bucket!r} does not exist; check the manifest URL and S3_ENDPOINT_URL")
    if code in ("403", "AccessDenied", "Forbidden"):
        return StorageError(
            f"access denied to {where}; the object must be public or S3_* credentials must allow reading it"
        )
    if code:
        return StorageError(f"S3 read of {where} failed ({code})")
    return StorageError(f"S3 read of {where} failed ({type(err).__name__}); check S3_ENDPOINT_URL and the network")


# -- http(s):// ---------------------------------------------------------------------------------


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


def _fetch_http(url: str, timeout: float, chunk_size: int, retries: int) -> bytes:
    """GET `url` in Range chunks (see the module docstring)."""
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
