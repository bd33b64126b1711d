"""S3BlobStore against a real moto S3 server: public URLs, ACLs, env, endpoints, multipart."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import uuid

import pytest

from soma_ray.storage import BlobNotFoundError, BlobStore, S3BlobStore, StorageError, fetch_url
from tests.kit import DUMMY_KEY_ID, DUMMY_SECRET
from tests.storage.kit import MotoS3


def _key(name: str = "blob.bin") -> str:
    return f"t-{uuid.uuid4().hex[:12]}/{name}"


def _anonymous_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # no credentials at all
        body: bytes = response.read()
    return body


def _store(s3: MotoS3, **kwargs: object) -> S3BlobStore:
    return S3BlobStore(
        s3.bucket,
        endpoint_url=s3.endpoint,
        access_key_id=DUMMY_KEY_ID,
        secret_access_key=DUMMY_SECRET,
        **kwargs,  # type: ignore[arg-type]
    )


def test_put_returns_public_url_readable_anonymously(s3_env: MotoS3) -> None:
    store = S3BlobStore.from_env()
    assert isinstance(store, BlobStore)
    key = _key("weights v1.bin")  # a space: the URL must quote it
    data = os.urandom(4096)

    url = store.put(key, data)

    assert url == f"{s3_env.endpoint}/{s3_env.bucket}/{key.replace(' ', '%20')}"
    assert _anonymous_get(url) == data
    grants = s3_env.client.get_object_acl(Bucket=s3_env.bucket, Key=key)["Grants"]
    all_users = [
        g["Permission"] for g in grants if g["Grantee"].get("URI", "").endswith("/global/AllUsers")
    ]
    assert all_users == ["READ"]


def test_without_acl_the_object_is_private(s3: MotoS3) -> None:
    # Control for the test above: moto does refuse anonymous reads of private objects.
    store = _store(s3, acl=None)
    url = store.put(_key(), b"secret-ish")
    with pytest.raises(urllib.error.HTTPError) as info:
        _anonymous_get(url)
    info.value.close()
    assert info.value.code == 403


def test_get_exists_delete_roundtrip(s3: MotoS3) -> None:
    store = _store(s3)
    key = _key()
    assert not store.exists(key)
    store.put(key, b"payload")
    assert store.exists(key)
    assert store.get(key) == b"payload"
    store.put(key, b"replaced")
    assert store.get(key) == b"replaced"
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # idempotent
    with pytest.raises(BlobNotFoundError, match="no blob"):
        store.get(key)


def test_fetch_url_reads_s3_object_in_ranges(s3: MotoS3) -> None:
    data = os.urandom(300_000)
    url = _store(s3).put(_key(), data)
    assert fetch_url(url, chunk_size=64 * 1024) == data


def test_endpoint_ending_with_bucket_name_is_tolerated(s3: MotoS3) -> None:
    for endpoint in (f"{s3.endpoint}/{s3.bucket}", f"{s3.endpoint}/{s3.bucket}/"):
        store = S3BlobStore(
            s3.bucket,
            endpoint_url=endpoint,
            access_key_id=DUMMY_KEY_ID,
            secret_access_key=DUMMY_SECRET,
        )
        assert store.endpoint_url == s3.endpoint
        key = _key()
        url = store.put(key, b"r2-style")
        assert url == f"{s3.endpoint}/{s3.bucket}/{key}"
        assert _anonymous_get(url) == b"r2-style"


def test_endpoint_with_another_path_is_rejected() -> None:
    with pytest.raises(StorageError, match="S3_ENDPOINT_URL|has a path"):
        S3BlobStore("bkt", endpoint_url="https://example.com/other", access_key_id="a", secret_access_key="b")
    with pytest.raises(StorageError, match="not an http"):
        S3BlobStore("bkt", endpoint_url="example.com", access_key_id="a", secret_access_key="b")


def test_public_url_mapping(s3_env: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_PUBLIC_URL", "https://pub-0123.r2.dev/")
    key = _key()
    url = S3BlobStore.from_env().put(key, b"cdn")
    assert url == f"https://pub-0123.r2.dev/{key}"
    # The object really went to the bucket under the same key.
    body = s3_env.client.get_object(Bucket=s3_env.bucket, Key=key)["Body"].read()
    assert body == b"cdn"


def test_public_url_serving_the_bucket_is_downloadable(s3_env: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    # A public URL that fronts the bucket (as a CDN or r2.dev domain does).
    monkeypatch.setenv("S3_PUBLIC_URL", f"{s3_env.endpoint}/{s3_env.bucket}")
    url = S3BlobStore.from_env().put(_key(), b"via public url")
    assert fetch_url(url) == b"via public url"


def test_prefix_goes_into_key_and_url(s3_env: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_PREFIX", "/runs/7/")
    store = S3BlobStore.from_env()
    key = _key()
    url = store.put(key, b"p")
    assert url == f"{s3_env.endpoint}/{s3_env.bucket}/runs/7/{key}"
    assert s3_env.client.get_object(Bucket=s3_env.bucket, Key=f"runs/7/{key}")["Body"].read() == b"p"
    assert store.get(key) == b"p"


def test_aws_region_url_without_endpoint() -> None:
    store = S3BlobStore("my-bucket", region="eu-west-1", access_key_id="a", secret_access_key="b")
    assert store.url_for("w/a b.bin") == "https://my-bucket.s3.eu-west-1.amazonaws.com/w/a%20b.bin"


def test_from_env_names_missing_variables_without_values() -> None:
    environ = {"S3_ACCESS_KEY_ID": "AKIAVALUEVISIBLE", "S3_ENDPOINT_URL": "http://127.0.0.1:9"}
    with pytest.raises(StorageError) as info:
        S3BlobStore.from_env(environ)
    message = str(info.value)
    assert "S3_BUCKET" in message and "S3_SECRET_ACCESS_KEY" in message
    assert "S3_ACCESS_KEY_ID" not in message  # it is set
    assert "AKIAVALUEVISIBLE" not in message and "\n" not in message


def test_from_env_accepts_aws_fallbacks() -> None:
    store = S3BlobStore.from_env(
        {
            "S3_BUCKET": "fallback-bucket",
            "AWS_ACCESS_KEY_ID": "a",
            "AWS_SECRET_ACCESS_KEY": "b",
            "AWS_REGION": "ap-south-1",
        }
    )
    assert store.url_for("k") == "https://fallback-bucket.s3.ap-south-1.amazonaws.com/k"


def test_invalid_keys_are_rejected_before_any_request(s3: MotoS3) -> None:
    store = _store(s3)
    for key in ("", "/abs", "a/../b", "a//b"):
        with pytest.raises(StorageError, match="invalid blob key"):
            store.put(key, b"x")


def test_multipart_upload_for_big_payloads(s3: MotoS3) -> None:
    store = _store(s3, multipart_threshold=5 * 1024 * 1024)  # S3's minimum part size
    data = os.urandom(11 * 1024 * 1024)
    key = _key()
    url = store.put(key, data)
    head = s3.client.head_object(Bucket=s3.bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-3")  # three parts: multipart happened
    assert head["ContentLength"] == len(data)
    grants = s3.client.get_object_acl(Bucket=s3.bucket, Key=key)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)
    assert fetch_url(url) == data


def test_missing_bucket_is_named(s3: MotoS3) -> None:
    store = S3BlobStore(
        "no-such-bucket-here",
        endpoint_url=s3.endpoint,
        access_key_id=DUMMY_KEY_ID,
        secret_access_key=DUMMY_SECRET,
    )
    for call in (lambda: store.put("k", b"x"), lambda: store.get("k"), lambda: store.exists("k")):
        with pytest.raises(StorageError) as info:
            call()
        message = str(info.value)
        assert "'no-such-bucket-here'" in message and "does not exist" in message
        assert "S3_BUCKET" in message and "\n" not in message
        assert DUMMY_SECRET not in message and DUMMY_SECRET not in repr(info.value)


def test_unreachable_endpoint_is_one_line_without_secret() -> None:
    secret = "unreachable-secret-8Jq3"
    store = S3BlobStore("bkt", endpoint_url="http://127.0.0.1:1", access_key_id="AKIAX", secret_access_key=secret)
    with pytest.raises(StorageError) as info:
        store.put("k", b"x")
    message = str(info.value)
    assert message.startswith("cannot reach bucket 'bkt' at http://127.0.0.1:1")
    assert "S3_ENDPOINT_URL" in message and "\n" not in message
    assert secret not in message and secret not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert secret not in repr(store)


def test_no_credentials_anywhere(monkeypatch: pytest.MonkeyPatch, s3: MotoS3) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = S3BlobStore(s3.bucket, endpoint_url=s3.endpoint)
    with pytest.raises(StorageError, match="no S3 credentials found; set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY"):
        store.put(_key(), b"x")


def test_half_given_credentials_are_rejected() -> None:
    with pytest.raises(StorageError, match="incomplete"):
        S3BlobStore("bkt", access_key_id="a")


def test_unknown_aws_profile_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile-xyz")
    with pytest.raises(StorageError, match="no-such-profile-xyz") as info:
        S3BlobStore("bkt", endpoint_url="http://127.0.0.1:1")
    assert "\n" not in str(info.value)
