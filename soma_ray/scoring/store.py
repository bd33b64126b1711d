"""The model store of a scoring actor: disk cache, verify, decrypt, keep a few resident.

Encrypted weights are cached on local disk by content (`cache_dir/weights/<checksum>`, the
manifest's base58 Blake2b-256), as the official scoring service does (protocol.md §1.2).
A cached file is re-hashed before every use, so a file damaged on disk is caught, deleted
and fetched again. Several processes on one node may share `cache_dir`: files are written
to a temp name and renamed into place, and a per-checksum lock file makes one process
download while the others wait for its result. Nothing assumes the cache is shared between
nodes. Downloads go through `soma_ray.storage.fetcher` under the store's `FetchPolicy`
(callers pass `policy_for(network)`: http(s) only on every network but the embedded one):
a download streams to a temporary file beside the cache entry, capped at the manifest's size
(a byte more is an error), hashed on the way, and is renamed into place only once its size
and checksum match; a failure leaves no file and the cache as it was. A manifest announcing
more bytes than weights of the store's architecture can take is refused before any request.

Weights are untrusted: decrypted bytes are read as safetensors only (never pickle), their
header must name exactly the architecture's tensors with its shapes and dtypes (the first
mismatch is named), and every value must be finite — else `ModelUnavailable`, so a NaN/Inf
model is skipped like any unusable one and never scores.

Decrypted models stay resident in a small LRU keyed by (model_id, checksum), so a model
updated on chain (new checksum) is a new entry and the old one ages out.

Every failure that makes a model unusable — unreachable, truncated, corrupt, mis-keyed,
wrong architecture, no key yet — is a `ModelUnavailable` with one line naming the model and
what is wrong; it never carries a decryption key or URL credentials. Callers skip such a
model (and must never submit a result computed without it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import base58
import torch
from soma_models.v1.torch import Model, ModelConfig
from soma_sdk import SomaClient

from soma_ray.chain.types import Manifest
from soma_ray.protocol.commitments import commitment, decode_key
from soma_ray.storage.errors import StorageError, redact_url
from soma_ray.storage.fetcher import (
    DiskFullError,
    Download,
    FetchPolicy,
    RefusedURLError,
    TooLargeError,
    UnsupportedURLError,
    URLFetcher,
)

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
    model_loads: dict[str, int] = field(default_factory=dict)  # `loads` by model id


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
        return _verify_download(len(data), "", manifest)
    return _verify_download(len(data), commitment(data), manifest)


def _verify_download(size: int, actual: str, manifest: Manifest) -> str | None:
    """None if (size, checksum) match the manifest, else what is wrong."""
    if size != manifest.size:
        return f"size mismatch: got {size} bytes, manifest says {manifest.size} (truncated or replaced weights file)"
    if actual != manifest.checksum:
        return (
            f"checksum mismatch: weights hash to {actual}, manifest says {manifest.checksum} (corrupt or replaced file)"
        )
    return None


# safetensors dtype names of the torch dtypes a V1 model holds.
_SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}


def expected_tensors(config: ModelConfig) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The safetensors tensors (name → (dtype, shape)) V1 weights of `config` hold exactly.

    Built on the meta device (no memory), through soma_models' own serializer layout.
    """
    from soma_models.v1.torch.serde import Serde

    with torch.device("meta"):
        module = Model(config)
    tensors = Serde(module)._serialize_common()
    return {name: (_SAFETENSORS_DTYPES.get(t.dtype, str(t.dtype)), tuple(t.shape)) for name, t in tensors.items()}


def max_weights_bytes(expected: Mapping[str, tuple[str, tuple[int, ...]]]) -> int:
    """An upper bound on the (encrypted = plain) size of weights holding `expected`."""
    itemsize = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
    data = 0
    for dtype, shape in expected.values():
        count = 1
        for dim in shape:
            count *= dim
        data += count * itemsize.get(dtype, 8)
    header = 8 + sum(len(name) + 160 for name in expected) + 4096  # JSON header, generously
    return data + header


def _check_tensors(plain: bytes, expected: Mapping[str, tuple[str, tuple[int, ...]]]) -> str | None:
    """None if the safetensors header of `plain` names exactly `expected`, else the first mismatch.

    Reads the header only (8-byte length + JSON); tensors are not materialised here.
    """
    if len(plain) < 8:
        return "decrypted weights are too short to be a safetensors file (mis-keyed or not V1 weights)"
    length = int.from_bytes(plain[:8], "little")
    if length > len(plain) - 8 or length > 100 * 1024 * 1024:
        return "decrypted weights are not a safetensors file: the decryption key does not open them (mis-keyed) or the file is not V1 weights"
    try:
        header = json.loads(plain[8 : 8 + length])
    except (ValueError, UnicodeDecodeError):
        return "decrypted weights are not a safetensors file: the decryption key does not open them (mis-keyed) or the file is not V1 weights"
    if not isinstance(header, dict):
        return "decrypted weights have a malformed safetensors header; they are not V1 weights"
    header.pop("__metadata__", None)
    for name in sorted(expected):
        if name not in header:
            return f"weights do not match the model config: tensor {name} is missing; check the architecture settings"
    for name in sorted(header):
        if name not in expected:
            return f"weights do not match the model config: unexpected tensor {name[:100]}; check the architecture settings"
    for name in sorted(expected):
        info = header[name]
        dtype, shape = expected[name]
        got_dtype = info.get("dtype") if isinstance(info, dict) else None
        got_shape = info.get("shape") if isinstance(info, dict) else None
        if not isinstance(got_shape, list) or tuple(got_shape) != shape:
            return (
                f"weights do not match the model config: tensor {name} has shape {got_shape}, "
                f"expected {list(shape)}; check the architecture settings"
            )
        if got_dtype != dtype:
            return (
                f"weights do not match the model config: tensor {name} is {str(got_dtype)[:20]}, "
                f"expected {dtype}; check the architecture settings"
            )
    return None


def _first_non_finite(model: Model) -> str | None:
    """The name of the first parameter or buffer holding NaN or Inf, else None."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
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
        policy: FetchPolicy | None = None,
    ) -> None:
        """`s3_endpoint_url` (else S3_ENDPOINT_URL) serves s3:// weights URLs; `policy` decides
        which weights URLs may be read (default: every scheme — pass `policy_for(network)`)."""
        if max_resident < 1:
            raise ValueError(f"max_resident must be at least 1, got {max_resident}")
        self.cache_dir = Path(cache_dir)
        self.weights_dir = self.cache_dir / "weights"
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        self.model_config = model_config
        self.max_resident = max_resident
        self.device = torch.device(device)
        self.fetcher = URLFetcher(policy=policy, s3_endpoint_url=s3_endpoint_url)
        self.expected_tensors = expected_tensors(model_config)
        self.max_weights_bytes = max_weights_bytes(self.expected_tensors)
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
        if not isinstance(manifest.size, int) or not 0 < manifest.size <= self.max_weights_bytes:
            raise ModelUnavailable(
                label,
                f"manifest says the weights are {manifest.size} bytes, but weights of this architecture take "
                f"at most {self.max_weights_bytes}; refusing to download them (the manifest is wrong or for "
                "another architecture)",
            )
        cached = self._read_cached(path, manifest)
        if cached is not None:
            return cached
        with self._file_lock(path):
            cached = self._read_cached(path, manifest)  # another process may have fetched it
            if cached is not None:
                return cached
            data = self._download(manifest, label, path)
            self.stats.downloads += 1
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

    def _download(self, manifest: Manifest, label: str, path: Path) -> bytes:
        """Stream the manifest's URL into the cache entry at `path` (verified), and its bytes.

        Capped at the manifest's size; checked before it is renamed into place, so a failure
        leaves no file. If the cache dir cannot be written the download goes to an anonymous
        temporary file instead (used uncached).
        """

        def check(download: Download) -> None:
            problem = _verify_download(download.size, download.commitment, manifest)
            if problem is not None:
                raise ModelUnavailable(label, f"{problem} at {redact_url(manifest.url)}")

        try:
            try:
                self.fetcher.fetch_file(manifest.url, path, max_bytes=manifest.size, check=check)
            except OSError as err:  # the cache dir cannot take the file: fetch uncached
                log.warning(
                    "cannot cache weights %s under %s (%s); using them uncached", path.name, path.parent, err.strerror
                )
                with tempfile.TemporaryFile() as handle:
                    check(self.fetcher.fetch_into(manifest.url, handle, max_bytes=manifest.size))
                    handle.seek(0)
                    return handle.read()
        except DiskFullError as err:  # nothing half-written is left: fetch_file removed its temp file
            raise ModelUnavailable(
                label,
                f"disk full while caching its weights into {self.weights_dir} ({os.strerror(err.errno or 0)}); "
                "free space there or set scoring.cache_dir to a folder on a bigger disk",
            ) from None
        except UnsupportedURLError as err:
            raise ModelUnavailable(label, f"unsupported weights URL: {err}") from None
        except RefusedURLError as err:
            raise ModelUnavailable(label, f"refused weights URL: {err}") from None
        except TooLargeError as err:
            raise ModelUnavailable(label, f"weights larger than the manifest says: {err}") from None
        except StorageError as err:
            raise ModelUnavailable(label, f"weights unreachable: {err}") from None
        return path.read_bytes()

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
            problem = _check_tensors(plain, self.expected_tensors)
            if problem is not None:
                raise ModelUnavailable(model_id, problem)
            # safetensors only (soma_models' Serde): never torch.load / pickle on downloaded bytes.
            model: Model = Model.load_bytes(plain, self.model_config)
        except ModelUnavailable:
            raise
        except Exception as err:  # noqa: BLE001 - safetensors/torch errors on bad bytes
            raise ModelUnavailable(model_id, _load_problem(err)) from None
        finally:
            del plain
        bad = _first_non_finite(model)
        if bad is not None:
            del model
            raise ModelUnavailable(model_id, f"weights hold NaN or Inf values (first in {bad}); the model is skipped")
        model = model.eval().to(device=self.device, dtype=torch.float32)
        model.requires_grad_(False)
        self.stats.loads += 1
        self.stats.model_loads[model_id] = self.stats.model_loads.get(model_id, 0) + 1
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

