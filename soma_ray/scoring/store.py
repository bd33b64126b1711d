"""The model store of a scoring actor: download, verify, decrypt, cache, keep a few resident.

Encrypted weights are cached on local disk by content (`cache_dir/weights/<checksum>`, the
manifest's base58 Blake2b-256), as the official scoring service does (protocol.md §1.2).
A cached file is re-hashed before every use, so a file damaged on disk is caught, deleted
and fetched again. Several processes on one node may share `cache_dir`: files are written
to a temp name and renamed into place, and a per-checksum lock file makes one process
download while the others wait for its result. Nothing assumes the cache is shared between
nodes.

Decrypted models stay resident in a small LRU keyed by (model_id, checksum), so a model
updated on chain (new checksum) is a new entry and the old one ages out.

Every failure that makes a model unusable — unreachable, truncated, corrupt, mis-keyed,
wrong architecture, no key yet — is a `ModelUnavailable` with one line naming the model and
what is wrong; it never carries a decryption key or URL credentials. Callers skip such a
model (and must never submit a result computed without it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import urllib.request
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import base58
import torch
from soma_models.v1.torch import Model, ModelConfig
from soma_sdk import SomaClient

from soma_ray.chain.types import Manifest
from soma_ray.protocol.commitments import commitment, decode_key
from soma_ray.storage.base import StorageError, fetch_url, redact_url

try:  # POSIX only; elsewhere concurrent processes may download the same file twice
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None  # type: ignore[assignment]

__all__ = ["ModelStore", "ModelUnavailable", "StoreStats"]

log = logging.getLogger(__name__)

RANGE_CHUNK = 5 * 1024 * 1024  # range requests above 5 MiB, as the official downloader
HTTP_RETRIES = 3
MIN_TIMEOUT_S = 30.0
NS_PER_BYTE = 20.0  # per-request timeout grows with the chunk size (~50 MB/s worst case)


class ModelUnavailable(Exception):
    """A model that cannot be used, in one line: which model and what is wrong."""

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        self.reason = " ".join(str(reason).split())
        super().__init__(f"model {model}: {self.reason}")


@dataclass
class StoreStats:
    """Counters for tests and progress lines."""

    downloads: int = 0  # files fetched from their URL
    cache_hits: int = 0  # encrypted files served from the disk cache (after re-verifying)
    corrupt_cache: int = 0  # cached files that failed re-verification and were deleted
    loads: int = 0  # models decrypted and built
    resident_hits: int = 0  # `get` calls answered from the resident set
    evictions: int = 0  # models dropped from the resident set


def _checksum_name(checksum: str, label: str) -> str:
    """The checksum if it is base58 of 32 bytes (so it is a safe file name), else raise."""
    try:
        ok = isinstance(checksum, str) and len(base58.b58decode(checksum)) == 32
    except ValueError:
        ok = False
    if not ok:
        raise ModelUnavailable(label, "manifest checksum is not a base58 Blake2b-256 digest; the manifest is malformed")
    return checksum


def _verify(data: bytes, manifest: Manifest) -> str | None:
    """None if `data` matches the manifest, else what is wrong."""
    if len(data) != manifest.size:
        return (
            f"size mismatch: got {len(data)} bytes, manifest says {manifest.size} (truncated or replaced weights file)"
        )
    actual = commitment(data)
    if actual != manifest.checksum:
        return (
            f"checksum mismatch: weights hash to {actual}, manifest says {manifest.checksum} (corrupt or replaced file)"
        )
    return None


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


class ModelStore:
    """Encrypted weights on disk, decrypted models in memory (at most `max_resident`).

    Not meant to be shared between threads for speed: one lock serialises `get`, which is
    what a scoring actor wants anyway (loading the same model twice at once wastes memory).
    """

    def __init__(
        self,
        cache_dir: Path,
        model_config: ModelConfig,
        *,
        max_resident: int = 3,
        device: str | torch.device = "cpu",
        s3_endpoint_url: str | None = None,
        max_disk_bytes: int | None = None,
    ) -> None:
        if max_resident < 1:
            raise ValueError(f"max_resident must be at least 1, got {max_resident}")
        self.cache_dir = Path(cache_dir)
        self.weights_dir = self.cache_dir / "weights"
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        self.model_config = model_config
        self.max_resident = max_resident
        self.device = torch.device(device)
        self.s3_endpoint_url = s3_endpoint_url or _env("S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
        self.max_disk_bytes = max_disk_bytes
        self.stats = StoreStats()
        self._resident: OrderedDict[tuple[str, str], Model] = OrderedDict()
        self._lock = threading.RLock()
        self._s3_client: Any = None

    def __repr__(self) -> str:
        return (
            f"ModelStore(cache_dir={str(self.cache_dir)!r}, max_resident={self.max_resident}, "
            f"device={str(self.device)!r}, resident={len(self._resident)})"
        )

    # -- encrypted bytes: disk cache + download -------------------------------------------

    def cache_path(self, manifest: Manifest) -> Path:
        """Where the encrypted weights of `manifest` live in the disk cache."""
        return self.weights_dir / _checksum_name(manifest.checksum, manifest.checksum)

    def encrypted_bytes(self, manifest: Manifest, *, model_id: str | None = None) -> bytes:
        """The verified encrypted weights: from the disk cache if intact, else downloaded.

        Raises ModelUnavailable (naming `model_id`, or the checksum) when they cannot be had.
        """
        label = model_id or manifest.checksum
        path = self.weights_dir / _checksum_name(manifest.checksum, label)
        cached = self._read_cached(path, manifest)
        if cached is not None:
            return cached
        with self._file_lock(path):
            cached = self._read_cached(path, manifest)  # another process may have fetched it
            if cached is not None:
                return cached
            data = self._download(manifest, label)
            self.stats.downloads += 1
            problem = _verify(data, manifest)
            if problem is not None:
                raise ModelUnavailable(label, f"{problem} at {redact_url(manifest.url)}")
            self._write(path, data)
        self._prune(keep=path)
        return data

    def _read_cached(self, path: Path, manifest: Manifest) -> bytes | None:
        try:
            if path.stat().st_size != manifest.size:
                problem: str | None = "size differs from the manifest"
                data = b""
            else:
                data = path.read_bytes()
                problem = _verify(data, manifest)
        except FileNotFoundError:
            return None
        except OSError as err:
            log.warning("cannot read cached weights %s (%s); downloading again", path.name, err.strerror)
            return None
        if problem is not None:
            log.warning(
                "cached weights %s failed verification (%s); deleting and downloading again", path.name, problem
            )
            self.stats.corrupt_cache += 1
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        self.stats.cache_hits += 1
        with contextlib.suppress(OSError):
            os.utime(path)  # recency for `max_disk_bytes` pruning
        return data

    @contextlib.contextmanager
    def _file_lock(self, path: Path) -> Iterator[None]:
        """Hold an exclusive lock per checksum across processes sharing this cache dir."""
        if fcntl is None:
            yield
            return
        lock_path = path.with_name(f".{path.name}.lock")
        with contextlib.ExitStack() as stack:
            try:
                handle = stack.enter_context(open(lock_path, "a+b"))
            except OSError:  # read-only cache dir: go without the lock
                handle = None
            if handle is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes
            yield

    def _write(self, path: Path, data: bytes) -> None:
        """Atomically place `data` at `path`; a failed write only costs the cache entry."""
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            tmp = None
        except OSError as err:
            log.warning(
                "cannot cache weights %s under %s (%s); using them uncached", path.name, path.parent, err.strerror
            )
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _prune(self, keep: Path) -> None:
        """Delete least recently used cached files while over `max_disk_bytes`."""
        if self.max_disk_bytes is None:
            return
        files: list[tuple[float, int, Path]] = []
        for entry in self.weights_dir.iterdir():
            if entry.name.startswith(".") or entry == keep:
                continue
            with contextlib.suppress(OSError):
                st = entry.stat()
                files.append((st.st_mtime, st.st_size, entry))
        total = sum(size for _, size, _ in files)
        with contextlib.suppress(OSError):
            total += keep.stat().st_size
        for _, size, entry in sorted(files):
            if total <= self.max_disk_bytes:
                break
            with contextlib.suppress(OSError):
                entry.unlink()
                total -= size

    def _download(self, manifest: Manifest, label: str) -> bytes:
        return self.download(manifest.url, label)

    def download(self, url: str, label: str) -> bytes:
        """The bytes at an http(s)://, s3:// or file:// URL, unverified (ModelUnavailable if not)."""
        shown = redact_url(url)
        scheme = urlsplit(url).scheme.lower()
        try:
            if scheme in ("http", "https"):
                timeout = max(MIN_TIMEOUT_S, RANGE_CHUNK * NS_PER_BYTE / 1e9)
                return fetch_url(url, timeout=timeout, chunk_size=RANGE_CHUNK, retries=HTTP_RETRIES)
            if scheme == "s3":
                return self._download_s3(url)
            if scheme == "file":
                return Path(urllib.request.url2pathname(unquote(urlsplit(url).path))).read_bytes()
        except StorageError as err:
            raise ModelUnavailable(label, f"weights unreachable: {err}") from None
        except FileNotFoundError:
            raise ModelUnavailable(label, f"weights unreachable: no file at {shown}") from None
        except OSError as err:
            raise ModelUnavailable(label, f"weights unreachable: cannot read {shown} ({err.strerror})") from None
        raise ModelUnavailable(label, f"unsupported weights URL {shown!r}: use http(s)://, s3:// or file://")

    def _download_s3(self, url: str) -> bytes:
        parts = urlsplit(url)
        bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
        if not bucket or not key:
            raise StorageError(f"S3 URL {redact_url(url)!r} must look like s3://bucket/key")
        client = self._s3()
        try:
            response = client.get_object(Bucket=bucket, Key=key)
            body: bytes = response["Body"].read()
        except Exception as err:  # noqa: BLE001 - botocore raises many kinds; all become one line
            raise StorageError(_s3_problem(err, bucket, key)) from None
        return body

    def _s3(self) -> Any:
        """A boto3 client: signed with S3_*/AWS_* credentials when present, else unsigned."""
        if self._s3_client is None:
            import boto3  # type: ignore[import-untyped]  # only needed for s3:// manifests
            from botocore import UNSIGNED  # type: ignore[import-untyped]
            from botocore.config import Config  # type: ignore[import-untyped]

            session = boto3.session.Session(
                aws_access_key_id=_env("S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
                aws_secret_access_key=_env("S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
                region_name=_env("S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION") or "us-east-1",
            )
            try:
                signed = session.get_credentials() is not None
            except Exception:  # noqa: BLE001 - a broken profile: fall back to anonymous reads
                signed = False
            config = Config(
                signature_version="s3v4" if signed else UNSIGNED,
                s3={"addressing_style": "path" if self.s3_endpoint_url else "auto"},
                retries={"max_attempts": HTTP_RETRIES + 1, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
            )
            self._s3_client = session.client("s3", endpoint_url=self.s3_endpoint_url, config=config)
        return self._s3_client

    # -- decrypted models ------------------------------------------------------------------

    def load(self, model_id: str, manifest: Manifest) -> Model:
        """Verified bytes → decrypted → `Model` in eval mode, float32, on `device`, no grads."""
        if manifest.decryption_key is None:
            raise ModelUnavailable(model_id, "no decryption key yet (model is pending its reveal); skip it")
        try:
            key = decode_key(manifest.decryption_key)
        except ValueError:
            raise ModelUnavailable(
                model_id, "decryption key is not 32 bytes of base58; the manifest is malformed"
            ) from None
        plain = SomaClient.decrypt_weights(self.encrypted_bytes(manifest, model_id=model_id), key)
        try:
            model: Model = Model.load_bytes(plain, self.model_config)
        except Exception as err:  # noqa: BLE001 - safetensors/torch errors on bad bytes
            raise ModelUnavailable(model_id, _load_problem(err)) from None
        finally:
            del plain
        model = model.eval().to(device=self.device, dtype=torch.float32)
        model.requires_grad_(False)
        self.stats.loads += 1
        return model

    def get(self, model_id: str, manifest: Manifest) -> Model:
        """The resident model for (model_id, checksum), loading it (and evicting) if needed."""
        entry = (model_id, manifest.checksum)
        with self._lock:
            model = self._resident.get(entry)
            if model is not None:
                self._resident.move_to_end(entry)
                self.stats.resident_hits += 1
                return model
            # Make room first, so the old model's memory is free before the new one loads.
            while len(self._resident) >= self.max_resident:
                self._evict_oldest()
            model = self.load(model_id, manifest)
            self._resident[entry] = model
            return model

    def get_many(self, manifests: Mapping[str, Manifest]) -> tuple[dict[str, Model], dict[str, str]]:
        """Load each model; returns (models by id, one-line reason by id for the failures).

        Callers skip the failed models and must never submit a result that needed them.
        """
        models: dict[str, Model] = {}
        failures: dict[str, str] = {}
        for model_id, manifest in manifests.items():
            try:
                models[model_id] = self.get(model_id, manifest)
            except ModelUnavailable as err:
                log.warning("%s", err)
                failures[model_id] = str(err)
        return models, failures

    def resident(self) -> list[tuple[str, str]]:
        """(model_id, checksum) of resident models, least recently used first."""
        with self._lock:
            return list(self._resident)

    def clear(self) -> None:
        """Drop every resident model (the disk cache stays)."""
        with self._lock:
            while self._resident:
                self._evict_oldest()

    def _evict_oldest(self) -> None:
        (model_id, checksum), model = self._resident.popitem(last=False)
        del model
        self.stats.evictions += 1
        log.info("evicted model %s (%s) from the resident set", model_id, checksum)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def _load_problem(err: Exception) -> str:
    """Why decrypted bytes did not become a model, without quoting them."""
    if type(err).__name__ == "SafetensorError":
        return (
            "decrypted weights are not a safetensors file: the decryption key does not open them "
            "(mis-keyed) or the file is not V1 weights"
        )
    text = str(err)
    if "Missing key" in text or "Unexpected key" in text or "size mismatch" in text:
        return (
            "weights do not match the model config (missing, unexpected or mis-shaped tensors); "
            "check the architecture settings"
        )
    first = text.splitlines()[0][:200] if text else type(err).__name__
    return f"cannot build the model from the decrypted weights: {first}"


def _s3_problem(err: Exception, bucket: str, key: str) -> str:
    """One line for an S3 read failure, from error codes only."""
    response = getattr(err, "response", None)
    code = ""
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
    where = f"s3://{bucket}/{key}"
    if code in ("404", "NoSuchKey", "NotFound"):
        return f"{where} does not exist; check the manifest URL"
    if code == "NoSuchBucket":
        return f"bucket {bucket!r} does not exist; check the manifest URL and S3_ENDPOINT_URL"
    if code in ("403", "AccessDenied", "Forbidden"):
        return f"access denied to {where}; the object must be public or S3_* credentials must allow reading it"
    if code:
        return f"S3 read of {where} failed ({code})"
    return f"S3 read of {where} failed ({type(err).__name__}); check S3_ENDPOINT_URL and the network"
