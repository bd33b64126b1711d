"""Real servers for the storage tests: the session's moto S3 server (tests/conftest.py), and (only for
the credential tests) a second moto server in its own process with IAM auth switched on, so
turning auth on cannot leak into other tests of this session."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from soma_ray.storage import BlobHTTPServer, LocalBlobStore
from tests.kit import DUMMY_KEY_ID, DUMMY_SECRET, boto_client
from tests.storage.kit import BUCKET, AuthS3, MotoS3


@pytest.fixture(scope="session")
def moto_s3(moto_endpoint: str) -> MotoS3:
    client = boto_client("s3", moto_endpoint)
    client.create_bucket(Bucket=BUCKET)
    return MotoS3(endpoint=moto_endpoint, bucket=BUCKET, client=client)


@pytest.fixture
def s3(moto_s3: MotoS3) -> MotoS3:
    """The session's moto server with the test bucket present.

    moto keeps its state per process; another suite's `mock_aws` may reset it, so the
    bucket is re-created when it has gone missing.
    """
    buckets = moto_s3.client.list_buckets()["Buckets"]
    if moto_s3.bucket not in {b["Name"] for b in buckets}:
        moto_s3.client.create_bucket(Bucket=moto_s3.bucket)
    return moto_s3


@pytest.fixture
def s3_env(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> MotoS3:
    """S3_* variables pointing at the moto server, set for one test only."""
    for name in ("S3_PUBLIC_URL", "S3_REGION", "S3_PREFIX", "S3_ACL", "S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("S3_BUCKET", s3.bucket)
    monkeypatch.setenv("S3_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("S3_ACCESS_KEY_ID", DUMMY_KEY_ID)
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", DUMMY_SECRET)
    return s3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def auth_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthS3]:
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto-auth") / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"moto auth server did not start: {log.read_text()[-500:]}")
                time.sleep(0.05)
        # Set up users while auth is still off, then switch it on for every request.
        iam = boto_client("iam", endpoint)
        boto_client("s3", endpoint).create_bucket(Bucket=BUCKET)
        users: dict[str, tuple[str, str]] = {}
        for name in ("writer", "outsider"):
            iam.create_user(UserName=name)
            key = iam.create_access_key(UserName=name)["AccessKey"]
            users[name] = (key["AccessKeyId"], key["SecretAccessKey"])
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="writer", PolicyName="all-s3", PolicyDocument=json.dumps(policy))
        request = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=5).close()
        yield AuthS3(endpoint, BUCKET, users["writer"], users["outsider"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def blob_server(tmp_path: Path) -> Iterator[tuple[LocalBlobStore, BlobHTTPServer]]:
    """A local store and the HTTP server that serves its directory."""
    root = tmp_path / "blobs"
    root.mkdir()
    with BlobHTTPServer(root) as server:
        yield LocalBlobStore(root, base_url=server.url), server


@pytest.fixture
def serve() -> Iterator[Callable[[type[BaseHTTPRequestHandler]], str]]:
    """Start throwaway HTTP servers on 127.0.0.1 with a given handler; returns each base URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(handler: type[BaseHTTPRequestHandler]) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
