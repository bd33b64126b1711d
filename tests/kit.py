"""What several test areas share (area helpers live in `tests/<area>/kit.py`)."""

from __future__ import annotations

import os
from typing import Any

import boto3  # type: ignore[import-untyped]
from hypothesis import HealthCheck, settings

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


# Fuzzing (hypothesis): FUZZ_EXAMPLES scales every fuzz test; CANARY is what SOMA_SECRET_KEY holds in them.
CANARY = "canary-secret-0123456789abcdef"
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def fuzz(share: float) -> settings:
    """FUZZ with a share of its examples, for tests whose examples are slow (a subprocess, a dataset load)."""
    return settings(FUZZ, max_examples=max(3, int(FUZZ_EXAMPLES * share)))


def one_clear_line(error: Exception) -> str:
    """The error's text, checked: one line, no traceback, no canary secret."""
    text = str(error)
    assert text and "\n" not in text and "\r" not in text, text
    assert "Traceback" not in text and CANARY not in text
    return text
