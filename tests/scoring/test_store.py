"""The scoring actor's model store, against a real HTTP server and real soma-sdk crypto."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
import torch
from moto.server import ThreadedMotoServer
from soma_models.v1.torch import Model, ModelConfig
from soma_sdk import SomaClient

from soma_ray.chain.types import Manifest
from soma_ray.protocol.commitments import commitment
from soma_ray.scoring.store import ModelStore, ModelUnavailable
from soma_ray.storage import BlobHTTPServer

TINY = ModelConfig(dropout_rate=0.0, embedding_dim=16, pwff_hidden_dim=32, num_layers=2, num_heads=4)
LARGE = ModelConfig(dropout_rate=0.0, embedding_dim=256, pwff_hidden_dim=1024, num_layers=4, num_heads=4)


class CountingServer(BlobHTTPServer):
    """A BlobHTTPServer that records the Range header of every GET it answers."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gets: list[str] = []
        server = self
        base: Any = self.RequestHandlerClass

        class Counting(base):  # type: ignore[misc]
            def do_GET(self) -> None:
                server.gets.append(self.headers.get("Range") or "")
                super().do_GET()

        self.RequestHandlerClass = Counting


class Blobs:
    """Encrypted weights published under the server's directory."""

    def __init__(self, root: Path, server: CountingServer) -> None:
        self.root = root
        self.server = server

    def publish(self, name: str, plain: bytes, key: str | None = None) -> tuple[Manifest, str]:
        encrypted, key_b58 = SomaClient.encrypt_weights(plain, key)
        (self.root / name).write_bytes(encrypted)
        manifest = Manifest(
            url=f"{self.server.url}/{name}",
            checksum=commitment(encrypted),
            size=len(encrypted),
            decryption_key=key_b58,
        )
        return manifest, key_b58


def weights(config: ModelConfig, seed: int) -> bytes:
    torch.manual_seed(seed)
    model = Model(config)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.05)  # LayerNorm ones/zeros would hide transposition errors
    return bytes(model.save_bytes())


def assert_same_weights(model: Model, plain: bytes, config: ModelConfig) -> None:
    original = Model.load_bytes(plain, config).state_dict()
    loaded = model.state_dict()
    assert loaded.keys() == original.keys()
    for name, tensor in original.items():
        assert torch.equal(loaded[name], tensor), name


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CountingServer]:
    root = tmp_path / "blobs"
    root.mkdir()
    srv = CountingServer(root)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def blobs(server: CountingServer) -> Blobs:
    return Blobs(server.root, server)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def one_line(err: pytest.ExceptionInfo[ModelUnavailable], *secrets: str) -> str:
    text = str(err.value)
    assert "\n" not in text
    for secret in secrets:
        assert secret not in text
    return text


# -- happy path and caches ------------------------------------------------------------------


def test_download_verify_decrypt_load_equals_original(blobs: Blobs, server: CountingServer, cache: Path) -> None:
    plain = weights(TINY, 0)
    manifest, _ = blobs.publish("m0.enc", plain)
    store = ModelStore(cache, TINY)

    model = store.load("0xm0", manifest)

    assert_same_weights(model, plain, TINY)
    assert not model.training
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in model.parameters())
    assert (cache / "weights" / manifest.checksum).read_bytes() == (server.root / "m0.enc").read_bytes()
    assert (store.stats.downloads, store.stats.cache_hits, store.stats.loads) == (1, 0, 1)
    assert len(server.gets) == 1
    with torch.no_grad():
        logits = model(torch.randint(0, 256, (1, 8)), torch.arange(8).unsqueeze(0))
    assert logits.shape == (1, 8, 264)


def test_second_use_is_a_disk_cache_hit_without_http(blobs: Blobs, server: CountingServer, cache: Path) -> None:
    plain = weights(TINY, 0)
    manifest, _ = blobs.publish("m0.enc", plain)
    ModelStore(cache, TINY).load("0xm0", manifest)
    assert len(server.gets) == 1
    server.stop()  # nothing answers any more

    again = ModelStore(cache, TINY)  # another actor on the same node
    model = again.load("0xm0", manifest)

    assert_same_weights(model, plain, TINY)
    assert len(server.gets) == 1
    assert (again.stats.downloads, again.stats.cache_hits) == (0, 1)


def test_get_keeps_the_model_resident(blobs: Blobs, cache: Path) -> None:
    manifest, _ = blobs.publish("m0.enc", weights(TINY, 0))
    store = ModelStore(cache, TINY)
    first = store.get("0xm0", manifest)
    assert store.get("0xm0", manifest) is first
    assert (store.stats.loads, store.stats.resident_hits, store.stats.cache_hits) == (1, 1, 0)


def test_resident_set_is_bounded_and_evicts_least_recently_used(blobs: Blobs, cache: Path) -> None:
    manifests = {f"0x{c}": blobs.publish(f"{c}.enc", weights(TINY, i))[0] for i, c in enumerate("abc")}
    store = ModelStore(cache, TINY, max_resident=2)
    a = store.get("0xa", manifests["0xa"])
    store.get("0xb", manifests["0xb"])
    assert store.get("0xa", manifests["0xa"]) is a  # a is now the most recent
    store.get("0xc", manifests["0xc"])  # evicts b

    assert store.resident() == [("0xa", manifests["0xa"].checksum), ("0xc", manifests["0xc"].checksum)]
    assert store.stats.evictions == 1
    store.get("0xb", manifests["0xb"])  # back from the disk cache, evicting a
    assert [m for m, _ in store.resident()] == ["0xc", "0xb"]
    assert (store.stats.evictions, store.stats.downloads, store.stats.cache_hits, store.stats.loads) == (2, 3, 1, 4)


def test_updated_checksum_is_a_new_entry(blobs: Blobs, cache: Path) -> None:
    old_plain, new_plain = weights(TINY, 0), weights(TINY, 1)
    old, _ = blobs.publish("v1.enc", old_plain)
    new, _ = blobs.publish("v2.enc", new_plain)
    store = ModelStore(cache, TINY)
    before = store.get("0xm", old)
    after = store.get("0xm", new)

    assert after is not before
    assert_same_weights(after, new_plain, TINY)
    assert store.resident() == [("0xm", old.checksum), ("0xm", new.checksum)]


def test_concurrent_stores_sharing_a_cache_download_once(blobs: Blobs, server: CountingServer, cache: Path) -> None:
    plain = weights(TINY, 0)
    manifest, _ = blobs.publish("m0.enc", plain)
    stores = [ModelStore(cache, TINY) for _ in range(4)]
    results: list[Model] = []
    threads = [threading.Thread(target=lambda s=s: results.append(s.load("0xm0", manifest))) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 4
    assert len(server.gets) == 1
    assert sum(s.stats.downloads for s in stores) == 1
    assert not [p for p in (cache / "weights").iterdir() if p.name.endswith(".tmp")]


def test_large_weights_download_in_range_requests(blobs: Blobs, server: CountingServer, cache: Path) -> None:
    plain = weights(LARGE, 0)
    manifest, _ = blobs.publish("large.enc", plain)
    assert manifest.size > 10 * 1024 * 1024

    model = ModelStore(cache, LARGE).load("0xlarge", manifest)

    assert_same_weights(model, plain, LARGE)
    chunk = 5 * 1024 * 1024
    expected = [f"bytes={s}-{min(s + chunk, manifest.size) - 1}" for s in range(0, manifest.size, chunk)]
    expected[0] = f"bytes=0-{chunk - 1}"
    assert server.gets == expected


def test_file_urls_are_read_directly(blobs: Blobs, server: CountingServer, cache: Path) -> None:
    plain = weights(TINY, 0)
    manifest, _ = blobs.publish("m0.enc", plain)
    local = Manifest((server.root / "m0.enc").as_uri(), manifest.checksum, manifest.size, manifest.decryption_key)
    assert_same_weights(ModelStore(cache, TINY).load("0xm0", local), plain, TINY)
    assert server.gets == []


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        srv.stop()


@pytest.mark.parametrize("signed", [True, False])
def test_s3_urls_download_signed_or_anonymous(
    moto_endpoint: str, cache: Path, monkeypatch: pytest.MonkeyPatch, signed: bool
) -> None:
    for name in (
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "S3_ENDPOINT_URL",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(cache.parent / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(cache.parent / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIATESTKEYID0000000",
        aws_secret_access_key="dummy-secret",
    )
    client.create_bucket(Bucket="weights")
    plain = weights(TINY, 3)
    encrypted, key = SomaClient.encrypt_weights(plain)
    client.put_object(Bucket="weights", Key=f"models/{signed}/w.enc", Body=encrypted, ACL="public-read")
    if signed:
        monkeypatch.setenv("S3_ACCESS_KEY_ID", "AKIATESTKEYID0000000")
        monkeypatch.setenv("S3_SECRET_ACCESS_KEY", "dummy-secret")
    manifest = Manifest(f"s3://weights/models/{signed}/w.enc", commitment(encrypted), len(encrypted), key)

    store = ModelStore(cache, TINY, s3_endpoint_url=moto_endpoint)
    assert_same_weights(store.load("0xs3", manifest), plain, TINY)

    missing = Manifest("s3://weights/models/none.enc", manifest.checksum, manifest.size, key)
    with pytest.raises(ModelUnavailable) as err:
        ModelStore(cache.parent / "other", TINY, s3_endpoint_url=moto_endpoint).load("0xs3", missing)
    assert "does not exist" in one_line(err, key, "dummy-secret")


def test_disk_cache_is_pruned_to_max_disk_bytes(blobs: Blobs, cache: Path) -> None:
    manifests = [blobs.publish(f"{i}.enc", weights(TINY, i))[0] for i in range(3)]
    store = ModelStore(cache, TINY, max_disk_bytes=2 * manifests[0].size + 10)
    for i, manifest in enumerate(manifests):
        store.encrypted_bytes(manifest)
        os.utime(cache / "weights" / manifest.checksum, (1_000_000 + i, 1_000_000 + i))  # distinct ages
    cached = {p.name for p in (cache / "weights").iterdir() if not p.name.startswith(".")}
    assert cached == {manifests[1].checksum, manifests[2].checksum}


# -- failures -----------------------------------------------------------------------------


def test_corrupt_file_on_the_server_is_a_checksum_mismatch(blobs: Blobs, server: CountingServer, cache: Path) -> None:
    manifest, key = blobs.publish("m0.enc", weights(TINY, 0))
    path = server.root / "m0.enc"
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))

    with pytest.raises(ModelUnavailable) as err:
        ModelStore(cache, TINY).get("0xbad", manifest)

    text = one_line(err, key)
    assert "0xbad" in text and "checksum mismatch" in text
    assert not (cache / "weights" / manifest.checksum).exists()


def test_truncated_file_is_a_size_mismatch(blobs: Blobs, server: CountingServer, cache: Path) -> None:
    manifest, key = blobs.publish("m0.enc", weights(TINY, 0))
    path = server.root / "m0.enc"
    path.write_bytes(path.read_bytes()[:-7])

    with pytest.raises(ModelUnavailable) as err:
        ModelStore(cache, TINY).get("0xshort", manifest)

    text = one_line(err, key)
    assert "0xshort" in text and "size mismatch" in text and "truncated" in text


def test_wrong_key_is_reported_as_mis_keyed(blobs: Blobs, cache: Path) -> None:
    manifest, right = blobs.publish("m0.enc", weights(TINY, 0))
    _, wrong = SomaClient.encrypt_weights(b"x")
    mis_keyed = Manifest(manifest.url, manifest.checksum, manifest.size, wrong)
    store = ModelStore(cache, TINY)

    with pytest.raises(ModelUnavailable) as err:
        store.get("0xkey", mis_keyed)

    text = one_line(err, right, wrong)
    assert "0xkey" in text and "mis-keyed" in text
    assert store.resident() == [] and store.stats.loads == 0


def test_missing_key_means_pending_model(blobs: Blobs, cache: Path) -> None:
    manifest, _ = blobs.publish("m0.enc", weights(TINY, 0))
    pending = Manifest(manifest.url, manifest.checksum, manifest.size, None)
    with pytest.raises(ModelUnavailable) as err:
        ModelStore(cache, TINY).get("0xpending", pending)
    assert "no decryption key" in one_line(err)


def test_malformed_key_and_checksum_are_rejected(blobs: Blobs, cache: Path) -> None:
    manifest, key = blobs.publish("m0.enc", weights(TINY, 0))
    store = ModelStore(cache, TINY)
    with pytest.raises(ModelUnavailable) as err:
        store.get("0xm", Manifest(manifest.url, manifest.checksum, manifest.size, "not-base58-0OIl"))
    assert "decryption key" in one_line(err, "not-base58-0OIl")
    with pytest.raises(ModelUnavailable) as err:
        store.get("0xm", Manifest(manifest.url, "../../etc/passwd", manifest.size, key))
    assert "checksum is not a base58" in one_line(err, key)


def test_weights_for_another_architecture_are_rejected(blobs: Blobs, cache: Path) -> None:
    other = ModelConfig(dropout_rate=0.0, embedding_dim=16, pwff_hidden_dim=32, num_layers=1, num_heads=4)
    manifest, key = blobs.publish("m0.enc", weights(other, 0))
    with pytest.raises(ModelUnavailable) as err:
        ModelStore(cache, TINY).get("0xarch", manifest)
    assert "do not match the model config" in one_line(err, key)


def test_unsupported_url_scheme(cache: Path) -> None:
    manifest = Manifest("ftp://example.org/w.enc", commitment(b"w"), 1, None)
    with pytest.raises(ModelUnavailable) as err:
        ModelStore(cache, TINY).encrypted_bytes(manifest, model_id="0xftp")
    assert "unsupported weights URL" in one_line(err)


def test_corrupt_cache_file_is_deleted_and_downloaded_again(blobs: Blobs, server: CountingServer, cache: Path) -> None:
    plain = weights(TINY, 0)
    manifest, _ = blobs.publish("m0.enc", plain)
    ModelStore(cache, TINY).load("0xm0", manifest)
    cached = cache / "weights" / manifest.checksum
    data = bytearray(cached.read_bytes())
    data[-1] ^= 0xFF
    cached.write_bytes(bytes(data))

    store = ModelStore(cache, TINY)
    assert_same_weights(store.load("0xm0", manifest), plain, TINY)

    assert len(server.gets) == 2
    assert (store.stats.corrupt_cache, store.stats.downloads, store.stats.cache_hits) == (1, 1, 0)
    assert cached.read_bytes() == (server.root / "m0.enc").read_bytes()


def test_get_many_returns_models_and_one_line_reasons(blobs: Blobs, server: CountingServer, cache: Path) -> None:
    good, _ = blobs.publish("good.enc", weights(TINY, 0))
    pending = Manifest(good.url, good.checksum, good.size, None)
    gone = Manifest(f"{server.url}/missing.enc", good.checksum, good.size, good.decryption_key)
    bad_key = Manifest(good.url, good.checksum, good.size, SomaClient.encrypt_weights(b"x")[1])
    store = ModelStore(cache, TINY)

    models, failures = store.get_many({"0xgood": good, "0xpending": pending, "0xbadkey": bad_key})
    assert list(models) == ["0xgood"]
    assert set(failures) == {"0xpending", "0xbadkey"}

    store2 = ModelStore(tmp := cache.parent / "cache2", TINY)
    models, failures = store2.get_many({"0xgone": gone})
    assert models == {} and "404" in failures["0xgone"] and "0xgone" in failures["0xgone"]
    assert not any(p for p in (tmp / "weights").iterdir() if not p.name.startswith("."))
    for reason in failures.values():
        assert "\n" not in reason


def test_unreachable_server(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("soma_ray.storage.fetcher.RETRY_BACKOFF_S", 0.0)
    manifest = Manifest("http://127.0.0.1:1/w.enc", commitment(b"w"), 1, None)
    with pytest.raises(ModelUnavailable) as err:
        ModelStore(cache, TINY).encrypted_bytes(manifest, model_id="0xfar")
    text = one_line(err)
    assert "0xfar" in text and "unreachable" in text
