"""The model store of a scoring actor: disk cache, verify, decrypt, keep a few resident.

Encrypted weights are cached on local disk by content (`cache_dir/weights/<checksum>`, the
manifest's base58 Blake2b-256), as the official scoring service does (protocol.md §1.2).
A cached file is re-hashed before every use, so a file damaged on disk is caught, deleted
and fetched again. Several processes on one node may share `cache_dir`: files are written
to a temp name and renamed into place, and a per-checksum lock file makes one process
download while the others wait for its result. Nothing assumes the cache is shared between
nodes. Downloads go through `soma_ray.storage.fetcher` (http(s)://, s3://, file://).

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
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import base58
import torch
from soma_models.v1.torch import Model, ModelConfig
from soma_sdk import SomaClient

from soma_ray.chain.types import Manifest
from soma_ray.protocol.commitments import commitment, decode_key
from soma_ray.storage.errors import StorageError, redact_url
from soma_ray.storage.fetcher import UnsupportedURLError, URLFetcher

try:  # POSIX only; elsewhere concurrent processes may download the same file twice
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None  # type: ignore[assignment]

__all__ = ["ModelStore", "ModelUnavailable", "StoreStats"]

log = logging.getLogger(__name__)


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
        """`s3_endpoint_url` (else S3_ENDPOINT_URL) serves s3:// weights URLs."""
        if max_resident < 1:
            raise ValueError(f"max_resident must be at least 1, got {max_resident}")
        self.cache_dir = Path(cache_dir)
        self.weights_dir = self.cache_dir / "weights"
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        self.model_config = model_config
        self.max_resident = max_resident
        self.device = torch.device(device)
        self.fetcher = URLFetcher(s3_endpoint_url=s3_endpoint_url)
        self.max_disk_bytes = max_disk_bytes
        self.stats = StoreStats()
        self._resident: OrderedDict[tuple[str, str], Model] = OrderedDict()
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return (
            f"ModelStore(cache_dir={str(self.cache_dir)!r}, max_resident={self.max_resident}, "
            f"device={str(self.device)!r}, resident={len(self._resident)})"
        )

    # -- encrypted bytes: disk cache -------------------------------------------------------

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
        """The bytes at the manifest's URL, unverified (ModelUnavailable if they cannot be had)."""
        try:
            return self.fetcher.fetch(manifest.url)
        except UnsupportedURLError:
            raise ModelUnavailable(
                label, f"unsupported weights URL {redact_url(manifest.url)!r}: use http(s)://, s3:// or file://"
            ) from None
        except StorageError as err:
            raise ModelUnavailable(label, f"weights unreachable: {err}") from None

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

