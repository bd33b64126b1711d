"""Serve the simulated network's blobs while a job runs, unless something already serves them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

from soma_ray.chain.sim.settings import SimSettings
from soma_ray.storage import BlobHTTPServer, StorageError


@contextmanager
def serving_blobs(settings: SimSettings) -> Iterator[BlobHTTPServer | None]:
    """Publish `blobs/` at `blob_url` (genesis weights, local uploads) for the duration.

    If the port is taken (say `soma-ray sim serve` runs), that server is used instead. Only
    loopback URLs are served from here; a remote blob_url is someone else's to serve.
    """
    url = urlparse(settings.blob_url)
    if url.hostname not in ("127.0.0.1", "localhost") or url.port is None:
        yield None
        return
    settings.blob_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = BlobHTTPServer(settings.blob_dir, "127.0.0.1", url.port).start()
    except StorageError:  # already served
        yield None
        return
    try:
        yield server
    finally:
        server.stop()
