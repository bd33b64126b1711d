"""Open the blob store a `StorageConfig` names."""

from __future__ import annotations

from soma_ray.storage.base import BlobStore
from soma_ray.storage.config import StorageConfig
from soma_ray.storage.errors import StorageError
from soma_ray.storage.local import LocalBlobStore
from soma_ray.storage.s3 import S3BlobStore


def open_blob_store(config: StorageConfig) -> BlobStore:
    if config.kind == "local":
        return LocalBlobStore(config.local.root, config.local.base_url)
    s3 = config.s3
    if s3 is None:
        raise StorageError("storage.kind is s3 but there is no storage.s3 section; add bucket and credentials")
    return S3BlobStore(
        s3.bucket,
        endpoint_url=s3.endpoint_url or None,
        region=s3.region,
        access_key_id=s3.access_key_id.get_secret_value() if s3.access_key_id else None,
        secret_access_key=s3.secret_access_key.get_secret_value() if s3.secret_access_key else None,
        public_url=s3.public_url or None,
        prefix=s3.prefix,
        connect_timeout=s3.connect_timeout_s,
        read_timeout=s3.read_timeout_s,
        max_attempts=s3.max_attempts,
    )
