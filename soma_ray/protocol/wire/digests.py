"""Digests, signing messages and derived ids (protocol.md §13.3, §2.3).

All Blake2b-256. The chain's `default_hash` prefixes the serde type name and `::` before the BCS:
`TransactionData::` for transactions, `Object::` for objects (Rust's `ObjectInner` is renamed to
`Object` for serde, so the salt is `Object::`, not `ObjectInner::`). The signature covers the
intent message `[scope 0, version 0, app 1] ‖ BCS(tx data)`, hashed without any name prefix.
"""

from __future__ import annotations

import base58

from soma_ray.protocol.commitments import blake2b256
from soma_ray.protocol.wire import bcs
from soma_ray.protocol.wire.base import DIGEST_LENGTH, check_digest
from soma_ray.protocol.wire.objects import Object
from soma_ray.protocol.wire.transaction import TransactionData

TRANSACTION_DATA_SALT = b"TransactionData::"
OBJECT_SALT = b"Object::"
TRANSACTION_EFFECTS_SALT = b"TransactionEffects::"

INTENT_TRANSACTION_DATA = bytes((0, 0, 1))
"""`Intent::soma_transaction()`: scope TransactionData (0), version V0 (0), app Soma (1)."""


def transaction_digest(tx_bcs: bytes) -> bytes:
    """`TransactionDigest` = Blake2b-256(`TransactionData::` ‖ BCS(tx data)); base58 on the wire."""
    return blake2b256(TRANSACTION_DATA_SALT + tx_bcs)


def digest_of(tx: TransactionData) -> bytes:
    """`transaction_digest` of a decoded transaction."""
    return transaction_digest(tx.encode())


def intent_message(tx_bcs: bytes) -> bytes:
    """BCS(`IntentMessage{intent, value}`): the three intent bytes, then BCS(tx data)."""
    return INTENT_TRANSACTION_DATA + tx_bcs


def signing_digest(tx_bcs: bytes) -> bytes:
    """The 32 bytes the sender's Ed25519 key signs: Blake2b-256(intent message)."""
    return blake2b256(intent_message(tx_bcs))


def derive_object_id(tx_digest: bytes, creation_index: int) -> bytes:
    """`ObjectID::derive_id`: Blake2b-256(tx digest ‖ index as u64 LE), no scope byte (§2.3).

    The n-th object a transaction creates gets index n (CreateModel's model id is index 0).
    """
    return blake2b256(check_digest(tx_digest, "transaction digest") + bcs.u64(creation_index))


def object_digest(obj: Object) -> bytes:
    """`ObjectDigest` = Blake2b-256(`Object::` ‖ BCS(ObjectInner)) — what a gas `ObjectRef` carries."""
    return blake2b256(OBJECT_SALT + obj.encode())


def to_base58(digest: bytes) -> str:
    """A digest as the RPC writes it (bitcoin alphabet)."""
    return base58.b58encode(check_digest(digest)).decode()


def from_base58(text: str) -> bytes:
    raw = base58.b58decode(text)
    if len(raw) != DIGEST_LENGTH:
        raise ValueError(f"a digest is {DIGEST_LENGTH} bytes in base58, got {len(raw)} bytes from {text!r}")
    return raw
