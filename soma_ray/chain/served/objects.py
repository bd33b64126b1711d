"""How the simulated network's objects look on the wire: BCS contents, owners, object digests.

The fullnode RPC returns an object as its type, version, owner, previous transaction and
`contents`, the BCS of its data without the 32-byte id (`types/src/object.rs`). soma-sdk rebuilds
the object from these and recomputes its digest, so the contents must be exactly the chain's:

- a `Coin`'s contents are its balance as a BCS u64;
- a `Target`'s contents are BCS `TargetV1` (protocol.md §3.1), which `fetch_submission_data`
  decodes for the data manifest.

The object digest is Blake2b-256 of `b"Object::"` ‖ BCS(ObjectInner{data, owner,
previous_transaction}) (the struct is serde-renamed "Object"). The sim does not store object
digests; they follow from what it stores.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from dataclasses import dataclass
from enum import IntEnum

import base58
import numpy as np

from soma_ray.chain.served.bcs import Writer
from soma_ray.protocol.commitments import blake2b256

OBJECT_DIGEST_SEED = b"Object::"
TARGET_INITIAL_SHARED_VERSION = 1  # OBJECT_START_VERSION: targets are shared from version 1


class ObjectType(IntEnum):
    """`ObjectType` in variant order (its BCS index) — also its name on the wire."""

    SystemState = 0
    Coin = 1
    StakedSoma = 2
    Target = 3


class OwnerKind(IntEnum):
    """`Owner` variants in BCS order."""

    ADDRESS = 0
    SHARED = 1
    IMMUTABLE = 2


def id_bytes(object_id: str) -> bytes:
    """The 32 raw bytes of a `0x`-hex object id or address."""
    raw = bytes.fromhex(object_id.removeprefix("0x").rjust(64, "0"))
    if len(raw) != 32:
        raise ValueError(f"not a 32-byte id: {object_id!r}")
    return raw


def digest_bytes(digest_b58: str) -> bytes:
    raw = base58.b58decode(digest_b58)
    if len(raw) != 32:
        raise ValueError(f"not a 32-byte base58 digest: {digest_b58!r}")
    return raw


@dataclass(frozen=True)
class WireObject:
    """One object as the RPC shows it."""

    object_id: str
    version: int
    object_type: ObjectType
    owner_kind: OwnerKind
    owner: str | None  # the address of an address-owned object
    contents: bytes
    previous_transaction: str  # base58 digest
    initial_shared_version: int | None = None

    def bcs(self) -> bytes:
        """BCS(ObjectInner): ObjectData{type, version, id ‖ contents}, Owner, previous_transaction."""
        w = Writer().variant(self.object_type).u64(self.version).blob(id_bytes(self.object_id) + self.contents)
        w.variant(self.owner_kind)
        if self.owner_kind is OwnerKind.ADDRESS:
            assert self.owner is not None
            w.raw(id_bytes(self.owner))
        elif self.owner_kind is OwnerKind.SHARED:
            w.u64(self.initial_shared_version or 0)
        w.blob(digest_bytes(self.previous_transaction))
        return bytes(w)

    @property
    def digest(self) -> str:
        return base58.b58encode(blake2b256(OBJECT_DIGEST_SEED + self.bcs())).decode()


# -- contents ----------------------------------------------------------------------------------


def coin_contents(balance: int) -> bytes:
    return struct.pack("<Q", balance)


def _tensor(w: Writer, values: np.ndarray) -> None:
    """SomaTensor: dtype u8 (0 = f32), little-endian f32 bytes, shape as Vec<u64>."""
    array = np.asarray(values, dtype="<f4").ravel()
    w.u8(0).blob(array.tobytes()).seq([array.size], Writer.u64)


def _f32_blob(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype="<f4")


def target_contents(row: sqlite3.Row) -> bytes:
    """BCS `TargetV1` of a row of the sim's `targets` table (field order of types/src/target.rs)."""
    w = Writer()
    _tensor(w, np.frombuffer(row["embedding"], dtype="<f4"))
    w.seq(json.loads(row["model_ids"]), lambda w_, m: w_.raw(id_bytes(m)))
    _tensor(w, np.array([row["distance_threshold"]], dtype="<f4"))
    w.u64(int(row["reward_pool"])).u64(int(row["generation_epoch"]))
    if row["status"] == "filled":
        w.variant(1).u64(int(row["fill_epoch"]))  # Filled { fill_epoch }
    else:
        w.variant(0)  # Open (claimed targets are deleted, never read)
    for name in ("submitter", "winning_model_id", "winning_model_owner"):
        w.option(row[name], lambda w_, a: w_.raw(id_bytes(a)))
    w.u64(int(row["bond_amount"] or 0))
    manifest = None
    if row["data_url"] is not None:
        manifest = (str(row["data_url"]), digest_bytes(row["data_checksum"]), int(row["data_size"]))
    w.option(manifest, _submission_manifest)
    w.option(_f32_blob(row["winning_embedding"]), _tensor)
    distance = None if row["winning_distance"] is None else np.array([row["winning_distance"]], dtype="<f4")
    w.option(distance, _tensor)
    loss = None if row["winning_loss"] is None else np.asarray(json.loads(row["winning_loss"]), dtype="<f4")
    w.option(loss, _tensor)
    w.length(0)  # submission_reports: the embedded network has no validators to report
    return bytes(w)


def _submission_manifest(w: Writer, manifest: tuple[str, bytes, int]) -> None:
    """SubmissionManifest{Manifest::V1{url, Metadata::V1{Checksum, size}}}."""
    url, checksum, size = manifest
    w.variant(0).string(url).variant(0).blob(checksum).u64(size)
