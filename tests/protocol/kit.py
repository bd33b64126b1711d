"""Random, seeded instances of the wire types (soma_ray.protocol.wire) for round-trip tests.

Built from each dataclass's field types, so a new field is covered without touching this file.
Values lean towards edges (0, 1, u64 max, empty vectors, None) and include arbitrary f32 bit
patterns (NaNs, infinities, signed zeros). `normalized_urls=True` keeps to URLs that Rust's
`url::Url` prints back unchanged, for comparisons with the real client.
"""

from __future__ import annotations

import dataclasses
import random
import types
import typing
from typing import Any

from soma_ray.protocol.wire.base import Manifest, ObjectRef, SomaTensor
from soma_ray.protocol.wire.objects import (
    AddressOwner,
    ImmutableOwner,
    Object,
    ObjectType,
    Owner,
    SharedOwner,
    Target,
    TargetStatusKind,
)
from soma_ray.protocol.wire.transaction import KINDS, TransactionData, TransactionKind

VARIABLE_BYTES = {
    "pubkey_bytes", "network_pubkey_bytes", "worker_pubkey_bytes", "proof_of_possession", "net_address",
    "p2p_address", "primary_address", "proxy_address", "epoch_randomness", "contents", "data",
}
"""`bytes` fields of free length; every other `bytes` field is a 32-byte id, address or digest."""

NORMALIZED_URLS = (
    "https://example.com/weights.bin",
    "http://127.0.0.1:9200/data/abc",
    "https://bucket.s3.us-east-1.amazonaws.com/models/m%20x.safetensors?x=1",
    "http://localhost:9200/",
)
OTHER_URLS = ("HTTP://Example.COM", "s3://b/k", "http://h/ü", "a:")


def u64(rng: random.Random) -> int:
    return rng.choice((0, 1, 127, 128, 2**32, 2**64 - 1, rng.getrandbits(64), rng.randrange(1_000)))


def free_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice((0, 1, 3, 32, 96, 130, rng.randrange(300))))


def tensor(rng: random.Random) -> SomaTensor:
    shape: tuple[int, ...] = rng.choice(((rng.randrange(6),), (1,), (), (2, rng.randrange(3)), (0,)))
    count = 1
    for d in shape:
        count *= d
    return SomaTensor(rng.randbytes(4 * count), shape)


def manifest(rng: random.Random, normalized_urls: bool) -> Manifest:
    urls = NORMALIZED_URLS if normalized_urls else NORMALIZED_URLS + OTHER_URLS
    return Manifest(rng.choice(urls), rng.randbytes(32), u64(rng))


def object_ref(rng: random.Random) -> ObjectRef:
    return ObjectRef(rng.randbytes(32), u64(rng), rng.randbytes(32))


def owner(rng: random.Random) -> Owner:
    return rng.choice((AddressOwner(rng.randbytes(32)), SharedOwner(u64(rng)), ImmutableOwner()))


def obj(rng: random.Random) -> Object:
    return Object(
        rng.randbytes(32), rng.choice(list(ObjectType)), u64(rng), free_bytes(rng), owner(rng), rng.randbytes(32)
    )


def target(rng: random.Random) -> Target:
    status = rng.choice(list(TargetStatusKind))

    def maybe(make: typing.Callable[[], Any]) -> Any:
        return None if rng.random() < 0.4 else make()

    return Target(
        embedding=tensor(rng),
        model_ids=tuple(rng.randbytes(32) for _ in range(rng.randrange(4))),
        distance_threshold=tensor(rng),
        reward_pool=u64(rng),
        generation_epoch=u64(rng),
        status=status,
        fill_epoch=u64(rng) if status == TargetStatusKind.FILLED else None,
        submitter=maybe(lambda: rng.randbytes(32)),
        winning_model_id=maybe(lambda: rng.randbytes(32)),
        winning_model_owner=maybe(lambda: rng.randbytes(32)),
        bond_amount=u64(rng),
        winning_data_manifest=maybe(lambda: manifest(rng, False)),
        winning_embedding=maybe(lambda: tensor(rng)),
        winning_distance_score=maybe(lambda: tensor(rng)),
        winning_loss_score=maybe(lambda: tensor(rng)),
        submission_reports=frozenset(rng.randbytes(32) for _ in range(rng.randrange(4))),
    )


def _value(rng: random.Random, name: str, hint: Any, normalized_urls: bool) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if type(None) in typing.get_args(hint) and rng.random() < 0.35:
            return None
        return _value(rng, name, rng.choice(options), normalized_urls)
    if origin is tuple:
        (item, _ellipsis) = typing.get_args(hint)
        return tuple(_value(rng, name, item, normalized_urls) for _ in range(rng.choice((0, 1, 2, 5))))
    if hint is int:
        return u64(rng)
    if hint is bytes:
        return free_bytes(rng) if name in VARIABLE_BYTES else rng.randbytes(32)
    if hint is ObjectRef:
        return object_ref(rng)
    if hint is SomaTensor:
        return tensor(rng)
    if hint is Manifest:
        return manifest(rng, normalized_urls)
    if hint is Object:
        return obj(rng)
    raise AssertionError(f"no generator for field {name}: {hint!r}")


def kind(rng: random.Random, cls: type[TransactionKind], normalized_urls: bool = False) -> TransactionKind:
    hints = typing.get_type_hints(cls)
    values = {f.name: _value(rng, f.name, hints[f.name], normalized_urls) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**values)


def transaction(
    rng: random.Random, cls: type[TransactionKind] | None = None, sender: bytes | None = None,
    normalized_urls: bool = False,
) -> TransactionData:
    chosen = cls if cls is not None else rng.choice(KINDS)
    return TransactionData(
        kind(rng, chosen, normalized_urls),
        sender if sender is not None else rng.randbytes(32),
        tuple(object_ref(rng) for _ in range(rng.choice((0, 1, 1, 3)))),
    )
