"""The storage error types, and the URL redaction every storage message goes through."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from soma_ray.errors import SomaRayError

__all__ = ["BlobNotFoundError", "StorageError", "redact_url"]


class StorageError(SomaRayError):
    """A storage failure described in one line: what is wrong and what to do.

    Messages are built by this package from names and codes only, never from secrets.
    """

    def __init__(self, message: str) -> None:
        # Collapse whitespace so the message is always one line, whatever was interpolated.
        super().__init__(" ".join(str(message).split()))


class BlobNotFoundError(StorageError):
    """The key (or URL) names nothing; callers may treat this as a cache miss."""


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
