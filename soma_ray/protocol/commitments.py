"""Hashes, commitments and object ids (protocol.md §2.3)."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import base58
import numpy as np

from soma_ray.protocol.wire.base import SomaTensor


def blake2b256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def commitment(data: bytes) -> str:
    """base58(Blake2b-256(data)) — equals `SomaClient.commitment`."""
    return base58.b58encode(blake2b256(data)).decode()


def bcs_tensor(values: Sequence[float] | np.ndarray, shape: Sequence[int] | None = None) -> bytes:
    """BCS(SomaTensor): u8 dtype(0=f32) ‖ ULEB128(4n) ‖ f32 LE × n ‖ ULEB128(ndim) ‖ u64 LE × ndim."""
    arr = np.asarray(values, dtype="<f4").ravel()
    dims = tuple(shape) if shape is not None else (arr.size,)
    return SomaTensor(arr.tobytes(), dims).encode()


def embedding_commitment(embedding: Sequence[float] | np.ndarray) -> str:
    """Blake2b(BCS(SomaTensor(embedding, [dim]))) as the chain verifies at reveal."""
    return commitment(bcs_tensor(embedding))


def decryption_key_commitment(key_b58: str) -> str:
    """Blake2b over the 32 raw key bytes (the key travels as base58)."""
    return commitment(decode_key(key_b58))


def decode_key(key_b58: str) -> bytes:
    raw = base58.b58decode(key_b58)
    if len(raw) != 32:
        raise ValueError(f"decryption key must be 32 bytes in base58, got {len(raw)} bytes")
    return raw


def derive_id(tx_digest: bytes, creation_num: int) -> str:
    """ObjectID::derive_id = Blake2b(tx_digest ‖ n as u64 LE), shown as 0x-hex."""
    return "0x" + blake2b256(tx_digest + struct.pack("<Q", creation_num)).hex()


def target_seed(tx_digest: bytes, creation_num: int) -> int:
    """make_target_seed: first 8 bytes, little endian, of Blake2b(digest ‖ n)."""
    return int.from_bytes(blake2b256(tx_digest + struct.pack("<Q", creation_num))[:8], "little")


def canonical_address(address: str) -> str:
    """Addresses and ids as the chain's RPC shows them: `0x` + 64 lowercase hex digits.

    `Keypair.address()` returns bare hex; normalising everywhere keeps comparisons between the
    simulated network, the SDK and our own records exact.
    """
    text = address.strip().lower().removeprefix("0x")
    if len(text) > 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"not a SOMA address: {address!r}")
    return "0x" + text.zfill(64)
