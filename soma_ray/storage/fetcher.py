"""Read a URL: the one downloader for http(s)://, s3:// and file:// URLs.

Everything that downloads bytes by URL (model weights, warm starts, read-back checks, the
simulated network) comes through `URLFetcher`, so what may be read is decided here, once, by
a `FetchPolicy`: which schemes, how many bytes at most, whether link-local / cloud-metadata
hosts may be contacted, and the timeouts. `CHAIN_POLICY` (http(s) only) is what anything a
real network names (manifests, submission data) is read with; `policy_for(network)` picks it.
`fetch_url` is the http(s)-only fetcher.

- Every download streams (to a file, or to memory for small things) in bounded reads while
  Blake2b-256 is computed on the way; a byte over the cap is an error, never a blow-up.
- http(s): GETs in Range chunks of `chunk_size`, each retried `retries` times on connection
  errors, timeouts and 5xx; 4xx fail at once. A 206 reply tells the total size (refused at
  once when over the cap); a 200 reply means the server ignores ranges and sent everything.
  Each request has a connect/read timeout and a whole-request deadline (a slow drip fails).
  Every host, and every redirect hop, is resolved and refused when any address is link-local
  (169.254.0.0/16, fe80::/10) or a cloud-metadata address, unless the policy allows it;
  loopback stays allowed. Redirects go to http(s) only.
- s3://bucket/key: one GetObject at `s3_endpoint_url` (else S3_ENDPOINT_URL), signed with the
  S3_*/AWS_* credentials when there are any, else anonymous.
- file://: a local regular file (never a device such as /dev/zero).

Every failure is a one-line StorageError (BlobNotFoundError when nothing is there,
UnsupportedURLError for a scheme the policy does not allow, RefusedURLError for a refused
host or redirect, TooLargeError for a download over its cap), without URL credentials.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import io
import ipaddress
import os
import re
import socket
import stat
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urljoin, urlsplit

import base58

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
    "CHAIN_POLICY",
    "DEFAULT_CHUNK_SIZE",
    "DISK_FULL_ERRNOS",
    "HTTP_SCHEMES",
    "DiskFullError",
    "Download",
    "FetchPolicy",
    "LocalWriteError",
    "RefusedURLError",
    "TooLargeError",
    "URLFetcher",
    "UnsupportedURLError",
    "fetch",
    "fetch_url",
    "policy_for",
]

DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024  # range requests above 5 MiB, as the official downloader
DEFAULT_TIMEOUT_S = 30.0  # connect, and each read: no byte for this long is a timeout
DEFAULT_DEADLINE_S = 300.0  # one whole request (one range chunk): at least ~17 KB/s
DEFAULT_RETRIES = 3
RETRY_BACKOFF_S = 0.25  # first pause between attempts; doubles each retry, capped at 2 s
READ_SIZE = 64 * 1024  # bytes per read: nothing is read in one unbounded go
MAX_REDIRECTS = 5

HTTP_SCHEMES = ("http", "https")
ALL_SCHEMES = ("http", "https", "s3", "file")

# Cloud instance-metadata endpoints: refused (like all link-local addresses) unless allowed.
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "metadata.goog"})
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
     ipaddress.ip_address("169.254.170.2")}
)


class UnsupportedURLError(StorageError):
    """The URL's scheme is not one this fetcher (its policy) reads."""


class RefusedURLError(StorageError):
    """The URL (or a redirect) points at a host the policy refuses (link-local, metadata)."""


class TooLargeError(StorageError):
    """The download is (or announces it is) larger than its cap."""


class LocalWriteError(StorageError):
    """The downloaded bytes could not be written locally (`errno` says why); never retried."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code


class DiskFullError(LocalWriteError):
    """No room for the download: the disk is full, a quota or a file size limit is reached."""


# What "no room" looks like: a full disk, a full quota, a file size limit (RLIMIT_FSIZE).
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _write_error(err: OSError, what: str) -> LocalWriteError:
    """One line for a local write failure of `what`: DiskFullError when there is no room."""
    reason = err.strerror or type(err).__name__
    if err.errno in DISK_FULL_ERRNOS:
        return DiskFullError(f"disk full while writing {what} ({reason}); free space there or use a bigger disk",
                             err.errno)
    return LocalWriteError(f"cannot write {what} ({reason}); check the folder and its disk", err.errno)


@dataclass(frozen=True)
class FetchPolicy:
    """What a fetch may do: schemes, a byte cap, link-local hosts, timeouts, retries.

    `max_bytes` caps every download (a call's own `max_bytes` can only lower it).
    `timeout` bounds connecting and each read; `deadline` bounds one whole request.
    """

    schemes: tuple[str, ...] = ALL_SCHEMES
    max_bytes: int | None = None
    allow_link_local: bool = False
    timeout: float = DEFAULT_TIMEOUT_S
    deadline: float = DEFAULT_DEADLINE_S
    retries: int = DEFAULT_RETRIES
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        unknown = sorted(set(self.schemes) - set(ALL_SCHEMES))
        if unknown:
            raise ValueError(f"cannot fetch {', '.join(unknown)} URLs; known schemes: {', '.join(ALL_SCHEMES)}")
        object.__setattr__(self, "schemes", tuple(s for s in ALL_SCHEMES if s in self.schemes))
        if self.chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {self.chunk_size}")
        if self.max_bytes is not None and self.max_bytes < 0:
            raise ValueError(f"max_bytes must be at least 0, got {self.max_bytes}")

    def capped(self, max_bytes: int | None) -> int | None:
        """The tighter of the policy's cap and `max_bytes`."""
        caps = [c for c in (self.max_bytes, max_bytes) if c is not None]
        return min(caps) if caps else None


# What a URL read from a real network (a manifest's weights URL, a target's data URL) is
# fetched with: http(s) only. The user's own sources (recipe storage, warm start) may use
# every scheme (the default policy).
CHAIN_POLICY = FetchPolicy(schemes=HTTP_SCHEMES)
USER_POLICY = FetchPolicy()


def policy_for(network: str) -> FetchPolicy:
    """The policy for URLs the chain names: the embedded network ("sim") reads its own blob
    dir by file:// too; every other network (the served localnet included) http(s) only."""
    return USER_POLICY if network == "sim" else CHAIN_POLICY


@dataclass(frozen=True)
class Download:
    """What was downloaded: its size and Blake2b-256 digest (computed on the way)."""

    size: int
    digest: bytes

    @property
    def commitment(self) -> str:
        """base58(Blake2b-256), as `soma_ray.protocol.commitments.commitment`."""
        return base58.b58encode(self.digest).decode()


class _Sink:
    """Counts, hashes and writes bytes; a byte over `cap` is a TooLargeError."""

    def __init__(self, out: IO[bytes], cap: int | None, shown: str) -> None:
        self.out, self.cap, self.shown = out, cap, shown
        self.size = 0
        self.hash = hashlib.blake2b(digest_size=32)

    def check_total(self, total: int) -> None:
        if self.cap is not None and total > self.cap:
            raise TooLargeError(
                f"{self.shown} announces {total} bytes, more than the {self.cap} allowed; "
                "refusing to download it (check the URL and the announced size)"
            )

    def write(self, block: bytes) -> None:
        if self.cap is not None and self.size + len(block) > self.cap:
            raise TooLargeError(
                f"{self.shown} sent more than the {self.cap} bytes allowed; "
                "download stopped (check the URL and the announced size)"
            )
        self.size += len(block)
        self.hash.update(block)
        try:
            self.out.write(block)
        except OSError as err:  # a full disk is not a network error: no retry, its own line
            raise _write_error(err, f"the download of {self.shown}") from None

    def mark(self) -> tuple[int, Any]:
        return self.size, self.hash.copy()

    def rewind(self, mark: tuple[int, Any]) -> None:
        """Back to `mark` (a failed attempt is retried from where it began)."""
        self.size, self.hash = mark[0], mark[1].copy()
        self.out.seek(self.size)
        self.out.truncate()

    def result(self) -> Download:
        return Download(self.size, self.hash.digest())


class URLFetcher:
    """Downloads URLs as its `policy` allows; holds its S3 client between calls."""

    def __init__(
        self,
        *,
        policy: FetchPolicy | None = None,
        schemes: Collection[str] | None = None,
        s3_endpoint_url: str | None = None,
        timeout: float | None = None,
        chunk_size: int | None = None,
        retries: int | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        """`policy` (default: every scheme, no cap); `schemes`/`timeout`/... override its fields."""
        policy = policy or USER_POLICY
        overrides: dict[str, Any] = {}
        if schemes is not None:
            overrides["schemes"] = tuple(schemes)
        if timeout is not None:
            overrides["timeout"] = timeout
        if chunk_size is not None:
            if chunk_size <= 0:
                raise StorageError(f"chunk_size must be positive, got {chunk_size}")
            overrides["chunk_size"] = chunk_size
        if retries is not None:
            overrides["retries"] = retries
        self.policy = replace(policy, **overrides) if overrides else policy
        self.environ = environ
        self.s3_endpoint_url = s3_endpoint_url or first_env(environ, *ENDPOINT_ENV)
        self._s3_client: Any = None

    @property
    def schemes(self) -> tuple[str, ...]:
        return self.policy.schemes

    def __repr__(self) -> str:
        return f"URLFetcher(policy={self.policy!r}, s3_endpoint_url={self.s3_endpoint_url!r})"

    def fetch(self, url: str, *, max_bytes: int | None = None) -> bytes:
        """The bytes at `url`, unverified, at most `max_bytes` (and the policy's cap)."""
        buffer = io.BytesIO()
        self.fetch_into(url, buffer, max_bytes=max_bytes)
        return buffer.getvalue()

    def fetch_into(self, url: str, out: IO[bytes], *, max_bytes: int | None = None) -> Download:
        """Stream the bytes at `url` into `out` (seekable, positioned at 0); size and digest.

        On failure `out` may hold a partial download: callers discard it (`fetch_file` does).
        """
        shown = redact_url(url)
        if not url.isascii() or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
            raise UnsupportedURLError(
                f"cannot download {shown!r}: a URL may hold only printable ASCII (percent-encode the rest)"
            )
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - parsing the port is what raises on a bad one
        except ValueError as err:
            raise UnsupportedURLError(f"cannot download {shown!r}: not a valid URL ({err})") from None
        scheme = parts.scheme.lower()
        if scheme not in self.policy.schemes:
            raise UnsupportedURLError(
                f"cannot download {shown!r}: only {_listing(self.policy.schemes)} URLs are allowed here"
                + ("" if "file" in self.policy.schemes else
                   " (URLs a network names are read over http(s) only; local files only from your own config)")
            )
        sink = _Sink(out, self.policy.capped(max_bytes), shown)
        if scheme == "s3":
            self._fetch_s3(url, sink)
        elif scheme == "file":
            _fetch_file(url, sink)
        else:
            _fetch_http(url, self.policy, sink)
        return sink.result()

    def fetch_file(
        self,
        url: str,
        dest: Path,
        *,
        max_bytes: int | None = None,
        check: Callable[[Download], None] | None = None,
    ) -> Download:
        """Stream `url` to a temporary file beside `dest`, `check` it, then rename it to `dest`.

        Any failure (download, cap, `check` raising) leaves no file behind and `dest` untouched.
        No room (ENOSPC, EDQUOT, EFBIG, at any write, the flush or the fsync) is a DiskFullError
        naming `dest`'s folder; other local write failures stay OSError (or LocalWriteError).
        """
        dest = Path(dest)
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
            with os.fdopen(fd, "w+b") as handle:
                result = self.fetch_into(url, handle, max_bytes=max_bytes)
                handle.flush()
                os.fsync(handle.fileno())  # some filesystems report a full disk only here
            if check is not None:
                check(result)
            os.replace(tmp, dest)
        except BaseException as err:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            code = err.errno if isinstance(err, (OSError, LocalWriteError)) else None
            if code in DISK_FULL_ERRNOS:
                raise DiskFullError(
                    f"disk full while writing {dest.name} into {dest.parent} ({os.strerror(code or 0)}); "
                    "free space there or use a folder on a bigger disk",
                    code,
                ) from None
            raise
        return result

    def _fetch_s3(self, url: str, sink: _Sink) -> None:
        parts = urlsplit(url)
        bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
        if not bucket or not key:
            raise StorageError(f"S3 URL {redact_url(url)!r} must look like s3://bucket/key")
        client = self._s3()
        try:
            response = client.get_object(Bucket=bucket, Key=key)
        except Exception as err:  # noqa: BLE001 - botocore raises many kinds; all become one line
            raise _s3_read_error(err, bucket, key) from None
        body = response["Body"]
        try:
            length = response.get("ContentLength")
            if isinstance(length, int):
                sink.check_total(length)
            while block := body.read(READ_SIZE):
                sink.write(block)
        except StorageError:
            raise
        except Exception as err:  # noqa: BLE001 - connection errors mid-body
            raise StorageError(f"S3 read of s3://{bucket}/{key} broke off ({type(err).__name__}); retry") from None
        finally:
            with contextlib.suppress(Exception):
                body.close()

    def _s3(self) -> Any:
        """The S3 client, made on first use: signed with S3_*/AWS_* credentials when present."""
        if self._s3_client is None:
            self._s3_client = s3_client(
                endpoint_url=self.s3_endpoint_url,
                region=first_env(self.environ, *REGION_ENV) or "us-east-1",
                access_key_id=first_env(self.environ, *ACCESS_KEY_ENV),
                secret_access_key=first_env(self.environ, *SECRET_KEY_ENV),
                signing="if-credentials",
                max_attempts=self.policy.retries + 1,
            )
        return self._s3_client


def fetch(
    url: str, *, s3_endpoint_url: str | None = None, policy: FetchPolicy | None = None, max_bytes: int | None = None
) -> bytes:
    """The bytes at an http(s)://, s3:// or file:// URL, unverified (one-off `URLFetcher`)."""
    return URLFetcher(policy=policy, s3_endpoint_url=s3_endpoint_url).fetch(url, max_bytes=max_bytes)


def fetch_url(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    retries: int = DEFAULT_RETRIES,
    max_bytes: int | None = None,
    policy: FetchPolicy | None = None,
) -> bytes:
    """Download an http:// or https:// `url` (any other scheme is an UnsupportedURLError)."""
    base = policy or CHAIN_POLICY
    if policy is None:
        base = replace(base, timeout=timeout, chunk_size=chunk_size, retries=retries)
    fetcher = URLFetcher(policy=base, schemes=tuple(s for s in base.schemes if s in HTTP_SCHEMES))
    return fetcher.fetch(url, max_bytes=max_bytes)


def _listing(schemes: tuple[str, ...]) -> str:
    """('http', 'https', 's3') → 'http://, https:// and s3://'."""
    names = [f"{s}://" for s in schemes]
    if not names:
        return "no"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


# -- file:// ------------------------------------------------------------------------------------


def _fetch_file(url: str, sink: _Sink) -> None:
    shown = redact_url(url)
    path = Path(urllib.request.url2pathname(unquote(urlsplit(url).path)))
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise StorageError(f"{shown} is not a regular file; point the URL at a weights or data file")
            sink.check_total(info.st_size)
            while block := handle.read(READ_SIZE):
                sink.write(block)
    except FileNotFoundError:
        raise BlobNotFoundError(f"no file at {shown}") from None
    except StorageError:
        raise
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


# -- hosts ----------------------------------------------------------------------------------------


def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip in METADATA_ADDRESSES


def check_host(url: str, policy: FetchPolicy) -> None:
    """Refuse an http(s) URL whose host is (or resolves, in any address, to) a link-local or
    cloud-metadata address, unless the policy allows it. Loopback and the rest are fine."""
    if policy.allow_link_local:
        return
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    shown = redact_url(url)
    refusal = (
        f"{shown} points at a link-local or cloud-metadata address ({host}); refusing to contact it "
        "(use a public http(s) URL)"
    )
    if host in METADATA_HOSTS:
        raise RefusedURLError(refusal)
    if not host:
        raise StorageError(f"{shown} has no host; check the URL")
    try:
        infos = socket.getaddrinfo(host, parts.port or 80, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return  # unresolvable: the request fails with its own one line
    for info in infos:
        if _refused_address(str(info[4][0])):
            raise RefusedURLError(refusal)


# -- http(s):// ---------------------------------------------------------------------------------


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_CONTENT_RANGE_UNSATISFIED = re.compile(r"bytes\s+\*/(\d+)")
# Client errors that will not go away by asking again; everything else is retried.
_NO_RETRY = {400, 401, 403, 404, 405, 410, 416}


class _Fatal(Exception):
    """Internal: stop retrying and raise this StorageError."""

    def __init__(self, error: StorageError) -> None:
        self.error = error


class _Slow(Exception):
    """Internal: the request ran past its deadline (retried like a timeout)."""


class _PolicyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to http(s) URLs the policy allows, on allowed hosts."""

    max_redirections = MAX_REDIRECTS

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy

    def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
        location = headers.get("location") or headers.get("uri")
        if location:
            new = urljoin(req.full_url, location)
            scheme = urlsplit(new).scheme.lower()
            allowed = tuple(s for s in self.policy.schemes if s in HTTP_SCHEMES)
            if scheme not in allowed:
                fp.close()
                raise _Fatal(RefusedURLError(
                    f"{redact_url(req.full_url)} redirects to a {scheme or 'relative'}:// URL; "
                    f"only {_listing(allowed)} redirects are followed (fix the URL)"
                ))
            try:
                check_host(new, self.policy)
            except RefusedURLError as err:
                fp.close()
                raise _Fatal(RefusedURLError(f"{redact_url(req.full_url)} redirects to {err}")) from None
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_302
    http_error_308 = http_error_302


def _checked_connection(policy: FetchPolicy, shown: str) -> Callable[..., socket.socket]:
    """`socket.create_connection`, then the address actually connected to is checked: a name that
    resolved to a public address for `check_host` and to a metadata one a moment later (DNS
    rebinding) is caught here, before a byte is sent (for https, before the TLS handshake)."""

    def connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        sock = socket.create_connection(address, *args, **kwargs)
        peer = str(sock.getpeername()[0])
        if not policy.allow_link_local and _refused_address(peer):
            sock.close()
            raise _Fatal(RefusedURLError(
                f"{shown} connected to a link-local or cloud-metadata address ({peer}); refusing to talk to it "
                "(its name may resolve differently each time; use a public http(s) URL)"
            ))
        return sock

    return connect


def _checked_factory(base: type[http.client.HTTPConnection], policy: FetchPolicy, req: Any) -> Callable[..., Any]:
    """Makes `base` connections that connect through `_checked_connection`."""
    connect = _checked_connection(policy, redact_url(req.full_url))

    def make(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
        conn = base(*args, **kwargs)
        conn._create_connection = connect  # type: ignore[attr-defined]  # the stdlib's own hook
        return conn

    return make


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__()
        self.policy = policy

    def http_open(self, req: Any) -> Any:
        return self.do_open(_checked_factory(http.client.HTTPConnection, self.policy, req), req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__()
        self.policy = policy

    def https_open(self, req: Any) -> Any:
        factory = _checked_factory(http.client.HTTPSConnection, self.policy, req)
        return self.do_open(factory, req, context=self._context)  # type: ignore[attr-defined]


def _open(request: urllib.request.Request, policy: FetchPolicy) -> Any:
    """One request (redirects checked against `policy`, every connection's address too), with
    the connect/read timeout."""
    opener = urllib.request.build_opener(_PolicyRedirects(policy), _CheckedHTTPHandler(policy),
                                         _CheckedHTTPSHandler(policy))
    return opener.open(request, timeout=policy.timeout)


def _read_body(response: Any, sink: _Sink, limit: int | None, deadline: float, shown: str) -> int:
    """Copy the body into `sink` in bounded reads; more than `limit` bytes is a wrong range."""
    got = 0
    while True:
        if time.monotonic() > deadline:
            raise _Slow()
        block: bytes = response.read1(READ_SIZE)
        if not block:
            return got
        got += len(block)
        if limit is not None and got > limit:
            raise _Fatal(StorageError(
                f"{shown} sent more bytes than the range it announced; refusing it (use a plain HTTP file server)"
            ))
        sink.write(block)


def _range_get(url: str, start: int, end: int, policy: FetchPolicy, sink: _Sink, total: int | None) -> tuple[int, int | None]:
    """One GET of bytes start..end into `sink`; returns (status, total size or None).

    `total` is the size the first reply announced (None for the first request).
    """
    shown = redact_url(url)
    deadline = time.monotonic() + policy.deadline
    check_host(url, policy)
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-{end}"})
    with _open(request, policy) as response:
        status: int = response.status
        declared_text = response.headers.get("Content-Length")
        declared = int(declared_text) if declared_text and declared_text.strip().isdigit() else None
        if status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
            if match is None:
                raise _Fatal(StorageError(
                    f"{shown} answered 206 without a usable Content-Range; "
                    "download it with a plain HTTP file server or S3 URL"
                ))
            got_start, got_end = int(match.group(1)), int(match.group(2))
            got_total = None if match.group(3) == "*" else int(match.group(3))
            if got_total is not None:
                sink.check_total(got_total)
            want_end = end if got_total is None else min(end, got_total - 1)
            if got_start != start or got_end != want_end or (total is not None and got_total != total):
                raise _Fatal(StorageError(
                    f"{shown} changed or answered a wrong range while downloading "
                    f"(wanted bytes {start}-{end} of {total if total is not None else '?'}); retry the download"
                ))
            length = got_end - got_start + 1
            if declared is not None and declared != length:
                raise _Fatal(StorageError(
                    f"{shown} announced a {declared}-byte body for a {length}-byte range; "
                    "refusing it (use a plain HTTP file server)"
                ))
            got = _read_body(response, sink, length, deadline, shown)
            if got != length:
                raise http.client.IncompleteRead(b"", length - got)
            return status, got_total
        if start:
            raise _Fatal(StorageError(
                f"{shown} changed or answered a wrong range while downloading "
                f"(wanted bytes {start}-{end} of {total}); retry the download"
            ))
        if declared is not None:
            sink.check_total(declared)
        got = _read_body(response, sink, None, deadline, shown)
        if declared is not None and got != declared:
            raise http.client.IncompleteRead(b"", declared - got)
        return status, got


def _with_retries(
    url: str, start: int, end: int, policy: FetchPolicy, sink: _Sink, total: int | None
) -> tuple[int, int | None]:
    shown = redact_url(url)
    last = ""
    mark = sink.mark()
    for attempt in range(policy.retries + 1):
        if attempt:
            time.sleep(min(RETRY_BACKOFF_S * 2 ** (attempt - 1), 2.0))
            sink.rewind(mark)
        try:
            return _range_get(url, start, end, policy, sink, total)
        except _Fatal as fatal:
            raise fatal.error from None
        except urllib.error.HTTPError as err:
            err.close()  # it holds the open response
            if err.code == 416 and start == 0:
                # An empty object cannot satisfy "bytes=0-N"; the server says so via */0.
                match = _CONTENT_RANGE_UNSATISFIED.fullmatch(err.headers.get("Content-Range", "").strip())
                if match and match.group(1) == "0":
                    return 200, 0
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
        except _Slow:
            last = f"the request took longer than its {policy.deadline:g} s deadline (server too slow)"
        except urllib.error.URLError as err:
            if isinstance(err.reason, TimeoutError):
                last = f"cannot connect (no answer within {policy.timeout:g} s)"
            else:
                last = f"cannot connect ({err.reason})"
        except TimeoutError:
            last = f"read timed out (no data for {policy.timeout:g} s)"
        except (OSError, http.client.HTTPException) as err:
            last = f"{type(err).__name__} ({err})" if str(err) else type(err).__name__
    raise StorageError(
        f"download of {shown} failed after {policy.retries + 1} attempts: {last}; "
        "check the server is up and reachable"
    )


def _fetch_http(url: str, policy: FetchPolicy, sink: _Sink) -> None:
    """GET `url` in Range chunks (see the module docstring)."""
    shown = redact_url(url)
    chunk_size = policy.chunk_size
    status, total = _with_retries(url, 0, chunk_size - 1, policy, sink, None)
    if status != 206:
        return  # whole body in one reply (server ignores Range, or empty object)
    if total is None:
        raise StorageError(
            f"{shown} did not tell its size (Content-Range */*); "
            "cannot download it in ranges"
        )
    while sink.size < total:
        start = sink.size
        end = min(start + chunk_size, total) - 1
        _with_retries(url, start, end, policy, sink, total)
    if sink.size != total:
        raise StorageError(
            f"{shown}: size mismatch, got {sink.size} bytes but the server announced {total}; "
            "retry the download"
        )
