"""A real S3-compatible server (moto, in-process, on 127.0.0.1) holding gzip blobs the way
Software Heritage does, for The Stack v2 tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from tests.data.data_testkit import SWH_BUCKET, SwhS3, make_client


@pytest.fixture(scope="session")
def swh_server() -> Iterator[SwhS3]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield SwhS3(endpoint=endpoint, client=make_client(endpoint))
    finally:
        server.stop()


@pytest.fixture
def swh(swh_server: SwhS3) -> SwhS3:
    """The session's server with the bucket present (moto state is per process and another
    suite may have reset it)."""
    buckets = {b["Name"] for b in swh_server.client.list_buckets()["Buckets"]}
    if SWH_BUCKET not in buckets:
        swh_server.client.create_bucket(Bucket=SWH_BUCKET)
    return swh_server
