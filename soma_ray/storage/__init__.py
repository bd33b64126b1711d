"""Where data and encrypted weights go: S3-compatible buckets or a local HTTP-served dir."""

from soma_ray.storage.base import (
    BlobNotFoundError,
    BlobStore,
    StorageError,
    check_key,
    fetch_url,
    redact_url,
)
from soma_ray.storage.local import BlobHTTPServer, LocalBlobStore
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
