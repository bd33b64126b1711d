"""The one URL fetcher (http(s)://, s3://, file://) and the one S3 client factory."""

from __future__ import annotations

from pathlib import Path

import pytest

from soma_ray.storage import (
    BlobNotFoundError,
    LocalBlobStore,
    StorageError,
    UnsupportedURLError,
    URLFetcher,
    fetch,
    s3_client,
)
from tests.kit import DUMMY_KEY_ID, DUMMY_SECRET
from tests.storage.kit import MotoS3


def test_file_urls(tmp_path: Path) -> None:
    path = tmp_path / "a b.bin"
    path.write_bytes(b"\x00weights")
    assert fetch(path.as_uri()) == b"\x00weights"
    with pytest.raises(BlobNotFoundError, match="no file at"):
        fetch((tmp_path / "missing.bin").as_uri())
    with pytest.raises(StorageError, match=r"cannot read .*\(Is a directory\)"):
        fetch(tmp_path.as_uri())


def test_http_urls(blob_server: tuple[LocalBlobStore, object]) -> None:
    store, _ = blob_server
    url = store.put("w/one.bin", b"bytes over http")
    assert fetch(url) == b"bytes over http"


def test_s3_urls_signed_from_the_environment(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    s3.client.put_object(Bucket=s3.bucket, Key="dir/x y.bin", Body=b"s3 bytes")
    monkeypatch.setenv("S3_ACCESS_KEY_ID", DUMMY_KEY_ID)
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", DUMMY_SECRET)
    fetcher = URLFetcher(s3_endpoint_url=s3.endpoint)
    assert fetcher.fetch(f"s3://{s3.bucket}/dir/x%20y.bin") == b"s3 bytes"
    with pytest.raises(BlobNotFoundError, match="does not exist; check the manifest URL"):
        fetcher.fetch(f"s3://{s3.bucket}/dir/none.bin")
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist"):
        fetcher.fetch("s3://no-such-bucket/k")
    with pytest.raises(StorageError, match="must look like s3://bucket/key"):
        fetcher.fetch(f"s3://{s3.bucket}/")


def test_schemes_are_an_allow_list(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    only_http = URLFetcher(schemes=("https", "http"))
    assert only_http.schemes == ("http", "https")
    with pytest.raises(UnsupportedURLError, match=r"only http:// and https:// URLs are allowed here"):
        only_http.fetch((tmp_path / "f").as_uri())
    with pytest.raises(UnsupportedURLError, match=r"only http://, https://, s3:// and file:// URLs"):
        fetch("ftp://example.com/f")
    with pytest.raises(ValueError, match="ftp"):
        URLFetcher(schemes=("http", "ftp"))


def test_s3_client_that_cannot_be_built_is_one_line_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile-xyz")
    with pytest.raises(StorageError, match="cannot set up an S3 client for the test bucket") as info:
        s3_client(access_key_id="AKIDSECRETLIKE", secret_access_key="very-secret", label="the test bucket")
    text = str(info.value)
    assert "\n" not in text and "very-secret" not in text and "no-such-profile-xyz" in text
