"""Digests, signing message and derived ids (soma_ray.protocol.wire.digests), protocol.md §13.3, §2.3.

Expected values are computed here directly with hashlib from the rules as written in the Rust
source (`default_hash` = Blake2b-256(serde name ‖ "::" ‖ BCS); `ObjectInner` is serde-renamed to
`Object`; `derive_id` = Blake2b-256(digest ‖ u64 LE)), independently of the module under test.
"""

from __future__ import annotations

import hashlib
import random
import struct

import base58
import pytest

from soma_ray.protocol.commitments import derive_id
from soma_ray.protocol.wire.base import ObjectRef
from soma_ray.protocol.wire.digests import (
    derive_object_id,
    digest_of,
    from_base58,
    intent_message,
    object_digest,
    signing_digest,
    to_base58,
    transaction_digest,
)
from soma_ray.protocol.wire.objects import AddressOwner, Object, ObjectType
from soma_ray.protocol.wire.transaction import ClaimRewards, TransactionData
from tests.protocol import kit


def b2b(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def test_transaction_digest_and_signing_message() -> None:
    tx = TransactionData(ClaimRewards(bytes([7]) * 32), bytes([1]) * 32, (ObjectRef(bytes(32), 1, bytes(32)),))
    raw = tx.encode()
    assert transaction_digest(raw) == b2b(b"TransactionData::" + raw) == digest_of(tx)
    assert intent_message(raw) == b"\x00\x00\x01" + raw
    assert signing_digest(raw) == b2b(b"\x00\x00\x01" + raw)
    assert signing_digest(raw) != transaction_digest(raw)


def test_created_object_ids() -> None:
    rng = random.Random(1)
    for index in (0, 1, 2, 255, 2**32):
        digest = rng.randbytes(32)
        expected = b2b(digest + struct.pack("<Q", index))
        assert derive_object_id(digest, index) == expected
        assert "0x" + expected.hex() == derive_id(digest, index)  # the simulator's existing rule agrees


def test_object_digest_of_a_coin() -> None:
    oid, owner, prev = bytes([0x42]) * 32, bytes([0x11]) * 32, bytes([0x99]) * 32
    coin = Object(oid, ObjectType.COIN, 4, struct.pack("<Q", 10**9), AddressOwner(owner), prev)
    inner = b"\x01" + struct.pack("<Q", 4) + b"\x28" + oid + struct.pack("<Q", 10**9) + b"\x00" + owner + b"\x20" + prev
    assert object_digest(coin) == b2b(b"Object::" + inner)
    assert object_digest(coin) != b2b(b"ObjectInner::" + inner)
    moved = Object(oid, ObjectType.COIN, 5, coin.contents, coin.owner, prev)
    assert object_digest(moved) != object_digest(coin)


def test_base58_text() -> None:
    rng = random.Random(2)
    for _ in range(50):
        d = rng.randbytes(32)
        text = to_base58(d)
        assert text == base58.b58encode(d).decode()
        assert from_base58(text) == d
    with pytest.raises(ValueError):
        from_base58(base58.b58encode(b"\x01" * 31).decode())
    with pytest.raises(ValueError):
        from_base58("0OIl")  # not in the bitcoin alphabet


def test_digest_depends_on_every_byte() -> None:
    rng = random.Random(3)
    tx = kit.transaction(rng)
    raw = tx.encode()
    seen = {transaction_digest(raw)}
    for i in range(0, len(raw), max(1, len(raw) // 16)):
        flipped = raw[:i] + bytes((raw[i] ^ 1,)) + raw[i + 1 :]
        seen.add(transaction_digest(flipped))
    assert len(seen) == 1 + len(range(0, len(raw), max(1, len(raw) // 16)))
