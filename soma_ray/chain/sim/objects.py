"""The simulated network's objects as the chain sees them: id, type, version, owner, contents,
previous transaction, and so the object digest (protocol.md §13.3).

The sim keeps its state in tables (`coins`, `targets`, `staked`, the `system` row); this module
turns a row into the `soma_ray.protocol.wire.objects.Object` the chain would hash, so the served
network, the transaction executor and the effects all agree on every object's version and digest:

- a coin: `Coin`, owned by its address, contents = the balance (`u64`);
- a target: `Target`, shared since version 1, contents = BCS `TargetV1` (§3.1);
- a stake: `StakedSoma`, owned, contents = `StakedSomaV1{pool_id, stake_activation_epoch, principal}`;
- the system state (id 0x5): `SystemState`, shared since version 1. The sim does not serialise the
  system state (models, pools and counters live in their own tables), so its contents are empty
  here: its digest still changes with every version, but it is not the chain's digest.

Versions are Lamport versions (every object a transaction writes gets max(input versions) + 1),
kept with the transaction that last wrote the object (`prev_tx`, base58). Rows written before
versions were kept (`prev_tx` NULL) read as they always did: a coin at the version that was the
sequence number of its last transaction, everything else as created by genesis.
"""

from __future__ import annotations

import json
import sqlite3

import numpy as np

from soma_ray.protocol.commitments import blake2b256
from soma_ray.protocol.wire.base import Manifest, SomaTensor, parse_address
from soma_ray.protocol.wire.digests import from_base58
from soma_ray.protocol.wire.objects import (
    AddressOwner,
    Object,
    ObjectType,
    SharedOwner,
    StakedSoma,
    Target,
    TargetStatusKind,
    coin_contents,
)

# Models, pools and counters live inside the one shared SystemState object (§4.3 fee counting).
SYSTEM_STATE_ID = "0x0000000000000000000000000000000000000000000000000000000000000005"
START_VERSION = 1
"""`OBJECT_START_VERSION`: the system state and every target are shared from version 1."""
GENESIS_SEQ = 1  # the genesis transaction is the first row of `txs`
POOL_ID_SEED = b"soma-ray/sim/staking-pool"

TYPE_NAMES = {
    ObjectType.SYSTEM_STATE: "SystemState",
    ObjectType.COIN: "Coin",
    ObjectType.STAKED_SOMA: "StakedSoma",
    ObjectType.TARGET: "Target",
}
"""`ObjectType` as the RPC names it (`Object.object_type`, the `object_type` filter)."""


def pool_id(model_id: str) -> str:
    """The id shown for a model's staking pool (the sim keeps no pool objects; a fixed derivation)."""
    return "0x" + blake2b256(POOL_ID_SEED + bytes.fromhex(model_id.removeprefix("0x"))).hex()


def tx_digest(conn: sqlite3.Connection, seq: int) -> bytes:
    row = conn.execute("SELECT digest FROM txs WHERE seq = ?", (seq,)).fetchone()
    if row is None or not row["digest"]:
        raise LookupError(f"the simulated network has no transaction {seq}")
    return from_base58(str(row["digest"]))


def _prev_tx(conn: sqlite3.Connection, stored: str | None, legacy_seq: int) -> bytes:
    return from_base58(stored) if stored else tx_digest(conn, legacy_seq)


# -- contents ----------------------------------------------------------------------------------


def _f32_tensor(blob: bytes | None) -> SomaTensor | None:
    if blob is None:
        return None
    return SomaTensor(bytes(blob), (len(blob) // 4,))


def _scalar(value: float | None) -> SomaTensor | None:
    return None if value is None else SomaTensor(np.float32(value).astype("<f4").tobytes(), (1,))


def _manifest(url: str, checksum_b58: str, size: int) -> Manifest:
    try:
        return Manifest(url, from_base58(checksum_b58), size)
    except ValueError:
        # The sim's own API accepts any data URL (the chain only absolute ones, which the SDK
        # guarantees); keep the text as given rather than refuse to show the target.
        manifest = object.__new__(Manifest)
        for name, value in (("url", url), ("checksum", from_base58(checksum_b58)), ("size", size)):
            object.__setattr__(manifest, name, value)
        return manifest


def target_value(row: sqlite3.Row) -> Target:
    """A row of the `targets` table as `TargetV1` (field order of types/src/target.rs)."""
    filled = row["status"] == "filled"  # claimed targets are deleted, never read
    manifest = None
    if row["data_url"] is not None:
        manifest = _manifest(str(row["data_url"]), str(row["data_checksum"]), int(row["data_size"]))
    loss = None
    if row["winning_loss"] is not None:
        values = np.asarray(json.loads(row["winning_loss"]), dtype="<f4")
        loss = SomaTensor(values.tobytes(), (values.size,))
    threshold = _scalar(float(row["distance_threshold"]))
    assert threshold is not None
    embedding = _f32_tensor(row["embedding"])
    assert embedding is not None
    return Target(
        embedding=embedding,
        model_ids=tuple(parse_address(m) for m in json.loads(row["model_ids"])),
        distance_threshold=threshold,
        reward_pool=int(row["reward_pool"]),
        generation_epoch=int(row["generation_epoch"]),
        status=TargetStatusKind.FILLED if filled else TargetStatusKind.OPEN,
        fill_epoch=int(row["fill_epoch"]) if filled else None,
        submitter=_address(row["submitter"]),
        winning_model_id=_address(row["winning_model_id"]),
        winning_model_owner=_address(row["winning_model_owner"]),
        bond_amount=int(row["bond_amount"] or 0),
        winning_data_manifest=manifest,
        winning_embedding=_f32_tensor(row["winning_embedding"]),
        winning_distance_score=_scalar(row["winning_distance"]),
        winning_loss_score=loss,
    )


def _address(text: str | None) -> bytes | None:
    return None if text is None else parse_address(text)


def target_contents(row: sqlite3.Row) -> bytes:
    """BCS `TargetV1` of a target row (what `fetch_submission_data` decodes)."""
    return target_value(row).encode()


# -- objects -----------------------------------------------------------------------------------


def coin_object(conn: sqlite3.Connection, row: sqlite3.Row) -> Object:
    return Object(
        object_id=parse_address(row["id"]),
        object_type=ObjectType.COIN,
        version=int(row["version"]),
        contents=coin_contents(int(row["balance"])),
        owner=AddressOwner(parse_address(row["owner"])),
        previous_transaction=_prev_tx(conn, row["prev_tx"], int(row["version"])),
    )


def target_object(conn: sqlite3.Connection, row: sqlite3.Row) -> Object:
    return Object(
        object_id=parse_address(row["id"]),
        object_type=ObjectType.TARGET,
        version=int(row["version"]),
        contents=target_contents(row),
        owner=SharedOwner(START_VERSION),
        previous_transaction=_prev_tx(conn, row["prev_tx"], GENESIS_SEQ),
    )


def staked_object(conn: sqlite3.Connection, row: sqlite3.Row) -> Object:
    stake = StakedSoma(parse_address(pool_id(row["model_id"])), int(row["stake_epoch"]), int(row["amount"]))
    return Object(
        object_id=parse_address(row["id"]),
        object_type=ObjectType.STAKED_SOMA,
        version=int(row["version"]),
        contents=stake.encode(),
        owner=AddressOwner(parse_address(row["owner"])),
        previous_transaction=_prev_tx(conn, row["prev_tx"], GENESIS_SEQ),
    )


def system_object(conn: sqlite3.Connection) -> Object:
    row = conn.execute("SELECT version, prev_tx FROM system WHERE id = 1").fetchone()
    if row is None:
        raise LookupError("the simulated network has no genesis yet")
    return Object(
        object_id=parse_address(SYSTEM_STATE_ID),
        object_type=ObjectType.SYSTEM_STATE,
        version=int(row["version"]),
        contents=b"",
        owner=SharedOwner(START_VERSION),
        previous_transaction=_prev_tx(conn, row["prev_tx"], GENESIS_SEQ),
    )


def load_object(conn: sqlite3.Connection, object_id: str) -> Object | None:
    """The current state of any object the sim keeps (None if it does not exist, or no longer)."""
    if object_id == SYSTEM_STATE_ID:
        return system_object(conn)
    row = conn.execute("SELECT * FROM coins WHERE id = ?", (object_id,)).fetchone()
    if row is not None:
        return coin_object(conn, row)
    row = conn.execute("SELECT * FROM targets WHERE id = ?", (object_id,)).fetchone()
    if row is not None:
        return target_object(conn, row)
    row = conn.execute("SELECT * FROM staked WHERE id = ?", (object_id,)).fetchone()
    if row is not None:
        return staked_object(conn, row)
    return None


def deleted_version(conn: sqlite3.Connection, object_id: str) -> int | None:
    """The version at which a deleted object was deleted (None if it was never deleted)."""
    row = conn.execute("SELECT version FROM tombstones WHERE id = ?", (object_id,)).fetchone()
    return None if row is None else int(row["version"])
