"""S3 failing mid-upload: moto behind a real fault-injecting HTTP proxy (tests/kit.py `FaultProxy`)
answering 5xx, stalling, or dropping the connection on PutObject or on one multipart part.

boto3 retries each request by itself; what is left is one line naming the bucket, the key and
the fix, without credentials or upload ids; nothing (no object, no open multipart upload) is left
behind, and the same upload succeeds once the fault clears."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from pydantic import SecretStr

from soma_ray.storage import S3BlobStore, StorageError
from soma_ray.storage.config import S3StorageConfig, StorageConfig
from soma_ray.storage.factory import open_blob_store
from tests.kit import DUMMY_KEY_ID, DUMMY_SECRET, Fault, FaultProxy
from tests.storage.kit import MotoS3

MIB = 1024 * 1024


def _store(s3: MotoS3, proxy: FaultProxy) -> S3BlobStore:
    return S3BlobStore(
        s3.bucket, endpoint_url=proxy.url, access_key_id=DUMMY_KEY_ID, secret_access_key=DUMMY_SECRET,
        read_timeout=0.5, connect_timeout=0.5, max_attempts=2, multipart_threshold=5 * MIB,
    )


def _stored(s3: MotoS3, key: str) -> bool:
    listed = s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=key).get("Contents", [])
    return any(o["Key"] == key for o in listed)


def _open_uploads(s3: MotoS3, key: str) -> list[str]:
    uploads = s3.client.list_multipart_uploads(Bucket=s3.bucket, Prefix=key).get("Uploads", [])
    return [u["UploadId"] for u in uploads]


def test_a_passing_5xx_is_retried_by_boto3(s3: MotoS3, fault_proxy: FaultProxy) -> None:
    key = f"t-{uuid.uuid4().hex[:8]}/blob.bin"
    fault_proxy.inject(Fault(503, "PUT", key, times=1))
    _store(s3, fault_proxy).put(key, b"survives one 503")
    assert fault_proxy.count("PUT", key, "503") == 1 and fault_proxy.count("PUT", key, "forward") == 1
    assert s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() == b"survives one 503"


# (fault, size, what the line must say): PutObject below 5 MiB, a multipart upload above it.
FAULTS = [
    pytest.param(Fault(500, "PUT"), 1000, "answered HTTP 500", id="put-500"),
    pytest.param(Fault(503, "PUT", "partNumber=2"), 6 * MIB, "answered HTTP 503", id="part-503"),
    pytest.param(Fault("stall", "PUT"), 1000, "did not answer within 0.5 s", id="put-stall"),
    pytest.param(Fault("stall", "PUT", "partNumber=1"), 6 * MIB, "did not answer within 0.5 s", id="part-stall"),
    pytest.param(Fault("drop", "PUT"), 1000, "connection to bucket", id="put-drop"),
]


@pytest.mark.parametrize(("fault", "size", "problem"), FAULTS)
def test_a_failing_upload_is_one_line_and_leaves_nothing(
    fault: Fault, size: int, problem: str, s3: MotoS3, fault_proxy: FaultProxy
) -> None:
    key = f"t-{uuid.uuid4().hex[:8]}/blob.bin"
    data = os.urandom(size)
    store = _store(s3, fault_proxy)
    fault_proxy.inject(fault)

    started = time.monotonic()
    with pytest.raises(StorageError) as err:
        store.put(key, data)
    assert time.monotonic() - started < 10  # bounded: timeouts and tries, not a hang
    text = str(err.value)
    assert "\n" not in text and problem in text and f"{key!r}" in text and s3.bucket in text
    assert "(2 tries)" in text and "retry later" in text
    assert DUMMY_SECRET not in text and DUMMY_KEY_ID not in text and "uploadId" not in text
    assert fault_proxy.count("PUT", fault.match, str(fault.action)) == 2  # boto3 tried twice
    assert not _stored(s3, key) and _open_uploads(s3, key) == []  # a failed multipart is aborted

    fault_proxy.clear()
    url = store.put(key, data)
    assert url.endswith(key)
    assert s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() == data


def test_the_timeout_and_tries_come_from_the_storage_config(s3: MotoS3, fault_proxy: FaultProxy) -> None:
    config = StorageConfig(kind="s3", s3=S3StorageConfig(
        bucket=s3.bucket, endpoint_url=fault_proxy.url, access_key_id=SecretStr(DUMMY_KEY_ID),
        secret_access_key=SecretStr(DUMMY_SECRET), read_timeout_s=0.3, max_attempts=1,
    ))
    fault_proxy.inject(Fault("stall", "PUT"))
    with pytest.raises(StorageError, match=r"did not answer within 0\.3 s during upload of 'k/x\.bin' \(1 try\)"):
        open_blob_store(config).put("k/x.bin", b"x")
    assert fault_proxy.count("PUT", "k/x.bin") == 1
