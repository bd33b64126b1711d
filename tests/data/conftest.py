"""A Software Heritage-like bucket of gzip blobs on the session's S3 server, for The Stack v2 tests."""

from __future__ import annotations

import pytest

from tests.data.kit import SWH_BUCKET, SwhS3
from tests.kit import boto_client


@pytest.fixture
def swh(moto_endpoint: str) -> SwhS3:
    """The session's server with the bucket present (moto state is per process and another
    suite may have reset it)."""
    server = SwhS3(endpoint=moto_endpoint, client=boto_client("s3", moto_endpoint))
    buckets = {b["Name"] for b in server.client.list_buckets()["Buckets"]}
    if SWH_BUCKET not in buckets:
        server.client.create_bucket(Bucket=SWH_BUCKET)
    return server
