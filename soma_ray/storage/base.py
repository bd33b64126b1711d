"""The blob store contract and its key rule.

Every store (S3, local directory) hands out public URLs; anyone (a validator, a scorer on
another machine) reads them back with plain HTTP through `storage.fetcher`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from soma_ray.storage.errors import StorageError

__all__ = ["BlobStore", "check_key"]


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
