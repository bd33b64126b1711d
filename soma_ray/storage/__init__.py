"""Where data and encrypted weights go: S3-compatible buckets or a local HTTP-served dir.

`S3BlobStore` loads lazily (boto3 is slow to import and only S3 recipes need it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from soma_ray.storage.base import (
    BlobNotFoundError,
    BlobStore,
    StorageError,
    check_key,
    fetch_url,
    redact_url,
)
from soma_ray.storage.local import BlobHTTPServer, LocalBlobStore

if TYPE_CHECKING:
    from soma_ray.storage.s3 import S3BlobStore

__all__ = [
    "BlobHTTPServer",
    "BlobNotFoundError",
    "BlobStore",
    "LocalBlobStore",
    "S3BlobStore",
    "StorageError",
    "check_key",
    "fetch_url",
    "redact_url",
]


def __getattr__(name: str) -> Any:
    if name == "S3BlobStore":
        from soma_ray.storage.s3 import S3BlobStore

        return S3BlobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
