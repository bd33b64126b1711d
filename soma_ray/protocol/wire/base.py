"""The small values every SOMA transaction and object is made of (protocol.md §13.3, §2.3).

- `SomaAddress`, `ObjectID` (= `ModelId`, `TargetId`): 32 raw bytes, **no** length prefix.
- `Digest` and its newtypes (`TransactionDigest`, `ObjectDigest`, `Checksum`, the three model
  commitments, `DecryptionKey`): serde bytes, so a length prefix `0x20` then 32 bytes.
- `ObjectRef = (ObjectID, Version u64, ObjectDigest)`.
- `SomaTensor` = `{dtype: u8 (0 = f32), bytes: Vec<u8> (f32 little endian), shape: Vec<u64>}`.
- `Manifest::V1{url: String, metadata: Metadata::V1{checksum: Digest, size: u64}}`;
  `SubmissionManifest{manifest}` is a plain struct around it (no extra bytes).

Addresses and ids are kept as `bytes`; `address_hex`/`parse_address` convert to and from the
`0x`-hex text the RPC and `Keypair.address()` use.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from soma_ray.protocol.wire import bcs
from soma_ray.protocol.wire.bcs import BcsError, Reader

ADDRESS_LENGTH = 32
DIGEST_LENGTH = 32
F32_DTYPE = 0
"""`Dtype::F32`, the only SomaTensor element type (4 bytes each)."""

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


# --------------------------------------------------------------------------------------------- addresses


def check_address(value: bytes, what: str = "address") -> bytes:
    if len(value) != ADDRESS_LENGTH:
        raise BcsError(f"{what} must be {ADDRESS_LENGTH} bytes, got {len(value)}")
    return bytes(value)


def write_address(value: bytes) -> bytes:
    """`SomaAddress` / `ObjectID`: the 32 bytes as they are."""
    return bcs.fixed(value, ADDRESS_LENGTH)


def read_address(reader: Reader) -> bytes:
    return reader.fixed(ADDRESS_LENGTH)


def address_hex(value: bytes) -> str:
    """`0x` + 64 lowercase hex digits, as the RPC shows addresses and object ids."""
    return "0x" + check_address(value).hex()


def parse_address(text: str) -> bytes:
    """An address or object id from hex text (with or without `0x`; short forms are left-padded)."""
    digits = text.strip().lower().removeprefix("0x")
    if not digits or len(digits) > 2 * ADDRESS_LENGTH or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError(f"not a SOMA address or object id: {text!r}")
    return bytes.fromhex(digits.zfill(2 * ADDRESS_LENGTH))


# --------------------------------------------------------------------------------------------- digests


def check_digest(value: bytes, what: str = "digest") -> bytes:
    if len(value) != DIGEST_LENGTH:
        raise BcsError(f"{what} must be {DIGEST_LENGTH} bytes, got {len(value)}")
    return bytes(value)


def write_digest(value: bytes) -> bytes:
    """A `Digest` (serde bytes): `0x20` then the 32 bytes."""
    return bcs.byte_vector(check_digest(value))


def read_digest(reader: Reader) -> bytes:
    value = reader.byte_vector()
    if len(value) != DIGEST_LENGTH:
        raise BcsError(f"a Digest must be {DIGEST_LENGTH} bytes, got {len(value)}")
    return value


# --------------------------------------------------------------------------------------------- ObjectRef


@dataclass(frozen=True)
class ObjectRef:
    """`(ObjectID, Version, ObjectDigest)` — the gas coins, bond coins and inputs of a transaction."""

    object_id: bytes
    version: int
    digest: bytes

    def __post_init__(self) -> None:
        check_address(self.object_id, "object id")
        check_digest(self.digest, "object digest")
        bcs.u64(self.version)

    def encode(self) -> bytes:
        return write_address(self.object_id) + bcs.u64(self.version) + write_digest(self.digest)

    @classmethod
    def read(cls, reader: Reader) -> ObjectRef:
        return cls(read_address(reader), reader.u64(), read_digest(reader))

    @classmethod
    def decode(cls, data: bytes) -> ObjectRef:
        return bcs.decode_all(data, cls.read)


# --------------------------------------------------------------------------------------------- SomaTensor


@dataclass(frozen=True)
class SomaTensor:
    """An f32 tensor as the chain stores it (protocol.md §2.3: `BCS(SomaTensor)`).

    `data` holds the raw little-endian f32 bytes, so NaN payloads and signed zeros survive a round
    trip bit for bit; `values()` gives Python floats. `from_values` builds the 1-D tensors the SDK
    sends (an embedding `[n]`, a loss `[n]`, a distance scalar `[1]`).
    """

    data: bytes
    shape: tuple[int, ...]
    dtype: int = F32_DTYPE

    def __post_init__(self) -> None:
        if self.dtype != F32_DTYPE:
            raise BcsError(f"unsupported SomaTensor dtype {self.dtype} (only 0 = f32)")
        for dim in self.shape:
            bcs.u64(dim)
        count = math.prod(self.shape)
        if len(self.data) != 4 * count:
            raise BcsError(f"SomaTensor of shape {list(self.shape)} needs {4 * count} bytes, got {len(self.data)}")

    @classmethod
    def from_values(cls, values: Sequence[float], shape: Sequence[int] | None = None) -> SomaTensor:
        dims = tuple(shape) if shape is not None else (len(values),)
        return cls(struct.pack(f"<{len(values)}f", *values), dims)

    def values(self) -> list[float]:
        return list(struct.unpack(f"<{len(self.data) // 4}f", self.data))

    def encode(self) -> bytes:
        return bcs.u8(self.dtype) + bcs.byte_vector(self.data) + bcs.vector(self.shape, bcs.u64)

    @classmethod
    def read(cls, reader: Reader) -> SomaTensor:
        dtype = reader.u8()
        data = reader.byte_vector()
        shape = tuple(reader.vector(Reader.u64))
        return cls(data, shape, dtype)

    @classmethod
    def decode(cls, data: bytes) -> SomaTensor:
        return bcs.decode_all(data, cls.read)


# --------------------------------------------------------------------------------------------- Manifest


def check_url(url: str) -> str:
    """The chain's `url::Url` accepts only absolute URLs; anything without a scheme is rejected.

    The Rust side re-prints a parsed URL in normalised form (e.g. `http://Example.com` becomes
    `http://example.com/`); the SDK signs that normalised text, so a URL taken from a decoded
    transaction or from the RPC fields the SDK sends is already in that form. This check does not
    normalise.
    """
    if not _URL_SCHEME.match(url):
        raise BcsError(f"not an absolute URL: {url!r}")
    return url


@dataclass(frozen=True)
class Manifest:
    """`Manifest::V1{url, Metadata::V1{checksum, size}}` (both enums have one variant, index 0)."""

    url: str
    checksum: bytes
    size: int

    VARIANT_COUNT = 1

    def __post_init__(self) -> None:
        check_url(self.url)
        check_digest(self.checksum, "manifest checksum")
        bcs.u64(self.size)

    def encode(self) -> bytes:
        return (
            bcs.variant(0)
            + bcs.string(self.url)
            + bcs.variant(0)
            + write_digest(self.checksum)
            + bcs.u64(self.size)
        )

    @classmethod
    def read(cls, reader: Reader) -> Manifest:
        reader.variant(cls.VARIANT_COUNT, "Manifest")
        url = reader.string()
        reader.variant(1, "Metadata")
        return cls(url, read_digest(reader), reader.u64())

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        return bcs.decode_all(data, cls.read)
