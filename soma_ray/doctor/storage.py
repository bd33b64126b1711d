"""S3 as validators will see it: write a test object, read it back from its public URL with no
credentials, delete it. A local store only needs a folder it can write."""

from __future__ import annotations

import os
import secrets

from soma_ray.doctor.disk import existing_parent
from soma_ray.doctor.result import Check, fail, ok, problem, warn
from soma_ray.storage.config import StorageConfig
from soma_ray.storage.errors import StorageError, redact_url

TEST_PREFIX = "soma-ray-doctor"


def storage_checks(config: StorageConfig) -> list[Check]:
    if config.kind == "local":
        return [_local(config)]
    return s3_round_trip(config)


def _local(config: StorageConfig) -> Check:
    root = config.local.root
    nearest = existing_parent(root)  # the job makes the folder; the doctor makes nothing
    if not os.access(nearest, os.W_OK | os.X_OK):
        return problem("storage", f"cannot write under {nearest} (for {root}); fix its permissions or set "
                       "storage.local.root", needed=True)
    return ok("storage", f"local folder {root}, served at {config.local.base_url}")


def s3_round_trip(config: StorageConfig) -> list[Check]:
    from soma_ray.storage.factory import open_blob_store
    from soma_ray.storage.fetcher import fetch_url

    key = f"{TEST_PREFIX}/{secrets.token_hex(8)}.bin"
    payload = os.urandom(64)
    try:
        store = open_blob_store(config)
        url = store.put(key, payload)
    except StorageError as err:
        return [fail("s3 write", str(err))]
    checks = [ok("s3 write", f"wrote {key} to bucket {config.s3.bucket if config.s3 else '?'}")]
    try:
        served = fetch_url(url, timeout=15.0, retries=0, max_bytes=1024)
    except StorageError as err:
        checks.append(fail("s3 public read", f"reading the test object back without credentials failed: {err}; "
                           "make the bucket public-read, or set S3_PUBLIC_URL to its public domain"))
    else:
        if served == payload:
            checks.append(ok("s3 public read", f"{redact_url(url)} serves the bytes written"))
        else:
            checks.append(fail("s3 public read", f"{redact_url(url)} serves other bytes than were written; "
                               "S3_PUBLIC_URL must map to this bucket (and S3_PREFIX)"))
    try:
        store.delete(key)
    except StorageError as err:  # uploads work without it: worth fixing, not blocking
        checks.append(warn("s3 delete", f"{err} (the test object {key} stays; delete it by hand)"))
    else:
        checks.append(ok("s3 delete", f"deleted {key}"))
    return checks
