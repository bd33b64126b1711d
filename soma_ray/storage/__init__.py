"""Where data and encrypted weights go: S3-compatible buckets or a local HTTP-served dir.

`fetch` / `URLFetcher` read any URL back (http(s)://, s3://, file://); `fetch_url` reads
http(s):// only; `s3_client` builds every boto3 client. `S3BlobStore` loads lazily (boto3 is
slow to import and only S3 recipes need it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from soma_ray.storage.base import BlobStore, check_key
from soma_ray.storage.errors import BlobNotFoundError, StorageError, redact_url
from soma_ray.storage.fetcher import UnsupportedURLError, URLFetcher, fetch, fetch_url
from soma_ray.storage.local import BlobHTTPServer, LocalBlobStore
from soma_ray.storage.s3_client import s3_client

if TYPE_CHECKING:
    from soma_ray.storage.s3 import S3BlobStore

__all__ = [
    "BlobHTTPServer",
    "BlobNotFoundError",
    "BlobStore",
    "LocalBlobStore",
    "S3BlobStore",
    "StorageError",
    "URLFetcher",
    "UnsupportedURLError",
    "check_key",
    "fetch",
    "fetch_url",
    "redact_url",
    "s3_client",
]


def __getattr__(name: str) -> Any:
    if name == "S3BlobStore":
        from soma_ray.storage.s3 import S3BlobStore

        return S3BlobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
