"""Shared pieces of the storage tests."""

from __future__ import annotations

from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

BUCKET = "soma-test-bucket"


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


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler base that keeps the test output free of access logs."""

    def log_message(self, format: str, *args: object) -> None:
        pass
