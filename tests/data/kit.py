"""Shared pieces of the data tests: a Software Heritage-like S3 server (moto) and helpers."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SWH_BUCKET = "softwareheritage"
SWH_PREFIX = "content/"
# moto without auth accepts any credentials for the uploads; reads in the tests are unsigned.


@dataclass(frozen=True)
class SwhS3:
    endpoint: str
    client: Any  # signed client, for uploads

    def put_blob(self, blob_id: str, content: bytes, *, compress: bool = True) -> None:
        body = gzip.compress(content) if compress else content
        # Public-read like the real bucket, so anonymous (unsigned) reads are allowed.
        self.client.put_object(Bucket=SWH_BUCKET, Key=SWH_PREFIX + blob_id, Body=body, ACL="public-read")


def random_bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def non_utf8(seed: int, size: int) -> bytes:
    """Random bytes that are certainly not valid UTF-8 (they start with a lone 0xff)."""
    return b"\xff" + random_bytes(seed, size - 1)


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
