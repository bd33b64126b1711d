"""Wrong credentials against a moto server that checks them (IAM auth on, own process)."""

from __future__ import annotations

import pytest

from soma_ray.storage import S3BlobStore, StorageError
from tests.storage.kit import AuthS3


def _store(auth: AuthS3, key_id: str, secret: str) -> S3BlobStore:
    return S3BlobStore(auth.bucket, endpoint_url=auth.endpoint, access_key_id=key_id, secret_access_key=secret)


def _error(store: S3BlobStore) -> StorageError:
    with pytest.raises(StorageError) as info:
        store.put("creds/k.bin", b"x")
    return info.value


def _assert_clean(err: StorageError, *secrets: str) -> str:
    message = str(err)
    assert "\n" not in message
    for secret in secrets:
        assert secret not in message
        assert secret not in repr(err)
    return message


def test_valid_credentials_work(auth_s3: AuthS3) -> None:
    store = _store(auth_s3, *auth_s3.writer)
    store.put("creds/ok.bin", b"ok")
    assert store.get("creds/ok.bin") == b"ok"


def test_wrong_secret(auth_s3: AuthS3) -> None:
    wrong = "wrong-secret-Qm7Tz1x"
    store = _store(auth_s3, auth_s3.writer[0], wrong)
    message = _assert_clean(_error(store), wrong, auth_s3.writer[1])
    assert "SignatureDoesNotMatch" in message and "S3_SECRET_ACCESS_KEY" in message
    assert wrong not in repr(store)


def test_unknown_access_key(auth_s3: AuthS3) -> None:
    secret = "unknown-key-secret-P0o9"
    message = _assert_clean(_error(_store(auth_s3, "AKIAUNKNOWN000000000", secret)), secret)
    assert "InvalidAccessKeyId" in message and "S3_ACCESS_KEY_ID" in message


def test_access_denied(auth_s3: AuthS3) -> None:
    store = _store(auth_s3, *auth_s3.outsider)
    message = _assert_clean(_error(store), auth_s3.outsider[1])
    assert message.startswith("access denied to bucket")
    with pytest.raises(StorageError, match="access denied"):
        store.get("creds/ok.bin")
