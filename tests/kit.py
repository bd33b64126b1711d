"""What several test areas share (area helpers live in `tests/<area>/kit.py`)."""

from __future__ import annotations

from typing import Any

import boto3  # type: ignore[import-untyped]

# Dummy credentials: moto without auth accepts anything, but boto3 needs some to sign.
DUMMY_KEY_ID = "AKIATESTKEYID0000000"
DUMMY_SECRET = "dummy-secret-Zx9vQ2pL7mN4"


def boto_client(service: str, endpoint: str, key_id: str = DUMMY_KEY_ID, secret: str = DUMMY_SECRET) -> Any:
    """A plain boto3 client for the test's own checks and set-up (never the code under test's)."""
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
