"""Shared pieces of the storage tests (a uniquely named module, unlike `conftest`, so
test modules can import it without clashing with other suites' conftest files)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3  # type: ignore[import-untyped]

BUCKET = "soma-test-bucket"
# Dummy credentials: moto without auth accepts anything, but boto3 needs some to sign.
DUMMY_KEY_ID = "AKIATESTKEYID0000000"
DUMMY_SECRET = "dummy-secret-Zx9vQ2pL7mN4"


@dataclass(frozen=True)
class MotoS3:
    endpoint: str
    bucket: str
    client: Any  # a boto3 S3 client with the dummy credentials, for direct checks


@dataclass(frozen=True)
class AuthS3:
    endpoint: str
    bucket: str
    writer: tuple[str, str]  # (key id, secret) allowed s3:*
    outsider: tuple[str, str]  # (key id, secret) of a user with no policy


def make_client(service: str, endpoint: str, key_id: str, secret: str) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
