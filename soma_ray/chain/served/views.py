"""The simulated network's state as soma.rpc messages (read-only views over its SQLite file).

Every function takes an open connection (`soma_ray.chain.sim.store.connect`) and the system
state loaded from it, and builds the messages soma-sdk 0.1.15 converts strictly
(`rpc/src/utils/rpc_proto_conversions.rs`, protocol.md §13.2): every `SystemParameters` field, an
empty validator set, the emission pool, target state and the whole model registry.

Checkpoints: the embedded network has no consensus, so each transaction is its own checkpoint and
a checkpoint's sequence number is the transaction's sequence number in the `txs` table (genesis is
checkpoint 1). Epoch `e` spans the checkpoints after the epoch change into it up to, and including,
the epoch change out of it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import base58
import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from soma_ray.chain.base import MAX_PAGE
from soma_ray.chain.served.messages import rpc
from soma_ray.chain.sim.objects import TYPE_NAMES, coin_object, load_object, pool_id, staked_object
from soma_ray.chain.sim.targets import status_clause, virtual_status
from soma_ray.chain.types import TargetStatus
from soma_ray.protocol.commitments import canonical_address, decode_key
from soma_ray.protocol.wire.base import address_hex
from soma_ray.protocol.wire.digests import object_digest, to_base58
from soma_ray.protocol.wire.objects import AddressOwner, Object, ObjectType, Owner, SharedOwner

DEFAULT_TARGET_PAGE = 100
DEFAULT_OBJECT_PAGE = 50
MAX_PAGE_BYTES = 512 * 1024  # the RPC cuts a page at 512 KiB (§3.4)

# Default read masks of the upstream RPC when a request sends none.
TARGET_MASK_DEFAULT = ("id", "status", "generation_epoch", "reward_pool")
EPOCH_MASK_DEFAULT = ("epoch", "first_checkpoint", "last_checkpoint", "start", "end", "protocol_config.protocol_version")
OBJECT_MASK_DEFAULT = ("object_id", "version", "object_type")

_SYSTEM_PARAMETERS = (
    "epoch_duration_ms", "validator_reward_allocation_bps", "model_min_stake", "model_architecture_version",
    "model_reveal_slash_rate_bps", "model_tally_slash_rate_bps", "target_epoch_fee_collection", "base_fee",
    "write_object_fee", "value_fee_bps", "min_value_fee_bps", "max_value_fee_bps", "fee_adjustment_rate_bps",
    "target_models_per_target", "target_embedding_dim", "target_initial_distance_threshold",
    "target_reward_allocation_bps", "target_hits_per_epoch", "target_hits_ema_decay_bps",
    "target_difficulty_adjustment_rate_bps", "target_max_distance_threshold", "target_min_distance_threshold",
    "target_initial_targets_per_epoch", "target_submitter_reward_share_bps", "target_model_reward_share_bps",
    "target_claimer_incentive_bps", "submission_bond_per_byte", "max_submission_data_size",
)


class BadRequest(ValueError):
    """A request field the RPC rejects (answered as InvalidArgument)."""


class NotFound(LookupError):
    """Nothing by that id or epoch (answered as NotFound)."""


# -- field masks -------------------------------------------------------------------------------


class Mask:
    """A `google.protobuf.FieldMask` as a set of dotted paths; empty means every field."""

    def __init__(self, paths: Sequence[str] = ()) -> None:
        self.paths = tuple(p.strip() for p in paths if p.strip())

    @classmethod
    def of(cls, request: Any, field: str, default: Sequence[str] = ()) -> Mask:
        if request.HasField(field):
            return cls(list(getattr(request, field).paths))
        return cls(default)

    def wants(self, name: str) -> bool:
        return not self.paths or any(p == name or p.startswith(name + ".") for p in self.paths)

    def sub(self, name: str) -> Mask:
        """The mask below `name`: everything if `name` itself is listed."""
        if not self.paths or name in self.paths:
            return Mask()
        return Mask([p[len(name) + 1 :] for p in self.paths if p.startswith(name + ".")])


def timestamp(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


# -- checkpoints and epochs --------------------------------------------------------------------


def latest_checkpoint(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT MAX(seq) AS seq FROM txs WHERE ok IS NOT NULL").fetchone()
    return int(row["seq"] or 0)


@dataclass(frozen=True)
class CheckpointTx:
    seq: int
    digest: str
    epoch: int


def checkpoints_after(conn: sqlite3.Connection, seq: int, limit: int = MAX_PAGE) -> list[CheckpointTx]:
    """Finished transactions after `seq`, oldest first (one checkpoint each)."""
    rows = conn.execute(
        "SELECT seq, digest, epoch FROM txs WHERE seq > ? AND ok IS NOT NULL ORDER BY seq LIMIT ?", (seq, limit)
    ).fetchall()
    return [CheckpointTx(int(r["seq"]), str(r["digest"]), int(r["epoch"])) for r in rows]


def _epoch_bounds(conn: sqlite3.Connection, epoch: int, current: int) -> tuple[int, int | None]:
    """(first checkpoint, last checkpoint or None while the epoch runs)."""
    before = conn.execute("SELECT MAX(seq) AS seq FROM txs WHERE epoch < ?", (epoch,)).fetchone()["seq"]
    first = int(before) + 1 if before is not None else 1
    if epoch >= current:
        return first, None
    last = conn.execute("SELECT MAX(seq) AS seq FROM txs WHERE epoch = ?", (epoch,)).fetchone()["seq"]
    return first, int(last) if last is not None else first


def epoch_start_ms(state: dict[str, Any], epoch: int) -> int:
    """The simulated clock moves one epoch duration per epoch change."""
    duration = int(state["params"]["epoch_duration_ms"])
    return int(state["epoch_start_ms"]) - (int(state["epoch"]) - epoch) * duration


def protocol_config(state: dict[str, Any], mask: Mask) -> Any:
    config = rpc().ProtocolConfig(protocol_version=int(state["protocol_version"]))
    if mask.wants("attributes"):
        for name, value in params_of(state).items():
            config.attributes[name] = str(value)
    return config


def epoch_message(conn: sqlite3.Connection, state: dict[str, Any], epoch: int | None, mask: Mask) -> Any:
    current = int(state["epoch"])
    number = current if epoch is None else epoch
    if number > current:
        raise NotFound(f"epoch {number} has not started (current epoch {current})")
    message = rpc().Epoch()
    if mask.wants("epoch"):
        message.epoch = number
    first, last = _epoch_bounds(conn, number, current)
    if mask.wants("first_checkpoint"):
        message.first_checkpoint = first
    if mask.wants("last_checkpoint") and last is not None:
        message.last_checkpoint = last
    if mask.wants("start"):
        message.start.CopyFrom(timestamp(epoch_start_ms(state, number)))
    if mask.wants("end") and number < current:
        message.end.CopyFrom(timestamp(epoch_start_ms(state, number + 1)))
    if mask.wants("protocol_config"):
        message.protocol_config.CopyFrom(protocol_config(state, mask.sub("protocol_config")))
    if mask.wants("system_state") and number == current:  # past system states are not kept
        message.system_state.CopyFrom(system_state(conn, state))
    return message


def service_info(conn: sqlite3.Connection, state: dict[str, Any], *, chain: str, server: str) -> Any:
    genesis = conn.execute("SELECT digest FROM txs WHERE seq = 1").fetchone()
    return rpc().GetServiceInfoResponse(
        chain_id=str(genesis["digest"]) if genesis else "",
        chain=chain,
        epoch=int(state["epoch"]),
        checkpoint_height=latest_checkpoint(conn),
        timestamp=timestamp(int(state["epoch_start_ms"])),
        lowest_available_checkpoint=1,
        lowest_available_checkpoint_objects=1,
        server=server,
    )


# -- system state ------------------------------------------------------------------------------


def params_of(state: dict[str, Any]) -> dict[str, int | float]:
    """The chain's `SystemParameters` now: the genesis parameters with the current value fee."""
    params = dict(state["params"])
    params["value_fee_bps"] = int(state["value_fee_bps"])
    return {name: params[name] for name in _SYSTEM_PARAMETERS}


def system_state(conn: sqlite3.Connection, state: dict[str, Any]) -> Any:
    m = rpc()
    ts, pool = state["target_state"], state["emission_pool"]
    return m.SystemState(
        epoch=int(state["epoch"]),
        epoch_start_timestamp_ms=int(state["epoch_start_ms"]),
        protocol_version=int(state["protocol_version"]),
        parameters=m.SystemParameters(**params_of(state)),
        validators=m.ValidatorSet(total_stake=0),
        emission_pool=m.EmissionPool(balance=int(pool["balance"]), emission_per_epoch=int(pool["emission_per_epoch"])),
        model_registry=model_registry(conn, state),
        target_state=m.TargetState(
            distance_threshold=float(ts["distance_threshold"]),
            targets_generated_this_epoch=int(ts["targets_generated_this_epoch"]),
            hits_this_epoch=int(ts["hits_this_epoch"]),
            hits_ema=int(ts["hits_ema"]),
            reward_per_target=int(ts["reward_per_target"]),
        ),
        safe_mode=False,
        safe_mode_accumulated_fees=0,
        safe_mode_accumulated_emissions=0,
    )


def _b58_bytes(text: str) -> bytes:
    return bytes(base58.b58decode(text))


def _manifest(commit: dict[str, Any]) -> Any:
    m = rpc()
    metadata = m.Metadata(v1=m.MetadataV1(checksum=_b58_bytes(commit["checksum"]), size=int(commit["size"])))
    return m.Manifest(v1=m.ManifestV1(url=str(commit["url"]), metadata=metadata))


def _commitments(message: Any, commit: dict[str, Any]) -> None:
    message.manifest.CopyFrom(_manifest(commit))
    message.weights_commitment = _b58_bytes(commit["weights"])
    message.embedding_commitment = _b58_bytes(commit["embedding"])
    message.decryption_key_commitment = _b58_bytes(commit["decryption_key"])


def model_message(row: sqlite3.Row, params: dict[str, Any]) -> Any:
    m = rpc()
    status = str(row["status"])
    staking = m.StakingPool(
        id=pool_id(row["id"]),
        soma_balance=int(row["stake"]),
        rewards_pool=0,  # model pools earn no rewards (§5)
        pool_token_balance=int(row["stake"]),
        # below zero after a same-epoch withdrawal from a pre-active pool: the chain's u64 wraps (protocol.staking)
        pending_stake=int(row["pending_stake"]) % 2**64,
        # pool tokens track SOMA 1:1 here (model pools earn no rewards, §5)
        pending_total_soma_withdraw=int(row["pending_withdraw"]),
        pending_pool_token_withdraw=int(row["pending_withdraw"]),
    )
    if row["activation_epoch"] is not None:
        staking.activation_epoch = int(row["activation_epoch"])
    model = m.Model(
        owner=str(row["owner"]),
        architecture_version=int(params["model_architecture_version"]),
        staking_pool=staking,
        commission_rate=int(row["commission_rate"]),
        next_epoch_commission_rate=int(row["next_commission_rate"]),
        state=status,
        create_epoch=int(row["create_epoch"]),
    )
    if row["commitments"]:
        _commitments(model, json.loads(row["commitments"]))
    if row["commit_epoch"] is not None:
        model.commit_epoch = int(row["commit_epoch"])
    if status in ("active", "inactive"):
        model.decryption_key = decode_key(str(row["decryption_key"]))
        if row["embedding"] is not None:
            model.embedding.extend(np.frombuffer(row["embedding"], dtype="<f4").tolist())
    if status == "active" and row["pending_update"]:
        pending = json.loads(row["pending_update"])
        update = m.PendingModelUpdate(commit_epoch=int(pending["commit_epoch"]))
        _commitments(update, pending)
        model.pending_update.CopyFrom(update)
    return model


def model_registry(conn: sqlite3.Connection, state: dict[str, Any]) -> Any:
    registry = rpc().ModelRegistry()
    active_stake = 0
    for row in conn.execute("SELECT * FROM models ORDER BY id").fetchall():
        registry.models[row["id"]].CopyFrom(model_message(row, state["params"]))
        registry.staking_pool_mappings[pool_id(row["id"])] = row["id"]
        if row["status"] == "active":
            active_stake += int(row["stake"])
    registry.total_model_stake = active_stake
    return registry


# -- objects -----------------------------------------------------------------------------------


def parse_id(text: str, what: str) -> str:
    try:
        return canonical_address(text)
    except ValueError:
        raise BadRequest(f"invalid {what}: {text!r}") from None


SERVED_TYPES = (ObjectType.COIN, ObjectType.STAKED_SOMA, ObjectType.TARGET)
"""What GetObject shows: the system state has no contents here (see chain.sim.objects)."""


def get_object(conn: sqlite3.Connection, object_id: str) -> Object:
    """The object at its current version, as the executor checks it (chain.sim.objects)."""
    oid = parse_id(object_id, "object_id")
    obj = load_object(conn, oid)
    if obj is None or obj.object_type not in SERVED_TYPES:
        raise NotFound(f"object {oid} not found")
    return obj


def owner_message(owner: Owner) -> Any:
    m = rpc()
    if isinstance(owner, AddressOwner):
        return m.Owner(kind=m.Owner.ADDRESS, address=address_hex(owner.address))
    if isinstance(owner, SharedOwner):
        return m.Owner(kind=m.Owner.SHARED, version=owner.initial_shared_version)
    return m.Owner(kind=m.Owner.IMMUTABLE)


def object_message(obj: Object, mask: Mask) -> Any:
    message = rpc().Object()
    if mask.wants("object_id"):
        message.object_id = address_hex(obj.object_id)
    if mask.wants("version"):
        message.version = obj.version
    if mask.wants("digest"):
        message.digest = to_base58(object_digest(obj))
    if mask.wants("owner"):
        message.owner.CopyFrom(owner_message(obj.owner))
    if mask.wants("object_type"):
        message.object_type = TYPE_NAMES[obj.object_type]
    if mask.wants("contents"):
        message.contents = obj.contents
    if mask.wants("previous_transaction"):
        message.previous_transaction = to_base58(obj.previous_transaction)
    return message


def balance(conn: sqlite3.Connection, owner: str) -> int:
    row = conn.execute("SELECT SUM(balance) AS total FROM coins WHERE owner = ?", (parse_id(owner, "owner"),)).fetchone()
    return int(row["total"] or 0)


def owned_objects(
    conn: sqlite3.Connection, owner: str, object_type: str | None, page_size: int | None, page_token: bytes | None
) -> tuple[list[Object], bytes | None]:
    """One page of the owner's objects (coins and StakedSoma), by id."""
    address = parse_id(owner, "owner")
    names = {name: t for t, name in TYPE_NAMES.items()}
    if object_type is not None and object_type not in names:
        raise BadRequest(f"invalid object_type: Unknown object type: {object_type}")
    size = DEFAULT_OBJECT_PAGE if not page_size else max(1, min(int(page_size), MAX_PAGE))
    after = _token_id(page_token)
    wanted = {ObjectType.COIN, ObjectType.STAKED_SOMA} if object_type is None else {names[object_type]}
    parts, args = [], []
    if ObjectType.COIN in wanted:
        parts.append("SELECT id, 'coins' AS tbl FROM coins WHERE owner = ? AND id > ?")
        args += [address, after]
    if ObjectType.STAKED_SOMA in wanted:
        parts.append("SELECT id, 'staked' AS tbl FROM staked WHERE owner = ? AND id > ?")
        args += [address, after]
    if not parts:
        return [], None
    rows = conn.execute(f"{' UNION ALL '.join(parts)} ORDER BY id LIMIT ?", [*args, size + 1]).fetchall()
    objects = []
    for row in rows[:size]:
        full = conn.execute(f"SELECT * FROM {row['tbl']} WHERE id = ?", (row["id"],)).fetchone()
        objects.append(coin_object(conn, full) if row["tbl"] == "coins" else staked_object(conn, full))
    token = objects[-1].object_id if len(rows) > size else None
    return objects, token


def _token_id(token: bytes | None) -> str:
    if not token:
        return ""
    if len(token) != 32:
        raise BadRequest("invalid page_token")
    return "0x" + token.hex()


# -- targets -----------------------------------------------------------------------------------


def target_message(row: sqlite3.Row, epoch: int, mask: Mask) -> Any:
    t = rpc().Target()
    fields: dict[str, Any] = {
        "id": row["id"],
        "status": virtual_status(row, epoch),
        "distance_threshold": float(row["distance_threshold"]),
        "reward_pool": int(row["reward_pool"]),
        "generation_epoch": int(row["generation_epoch"]),
        "fill_epoch": row["fill_epoch"],
        "submitter": row["submitter"],
        "winning_model_id": row["winning_model_id"],
        "winning_model_owner": row["winning_model_owner"],
        "bond_amount": int(row["bond_amount"] or 0),
        "data_url": row["data_url"],
    }
    for name, value in fields.items():
        if value is not None and mask.wants(name):
            setattr(t, name, value)
    if mask.wants("embedding"):
        t.embedding.extend(np.frombuffer(row["embedding"], dtype="<f4").tolist())
    if mask.wants("model_ids"):
        t.model_ids.extend(json.loads(row["model_ids"]))
    return t


def list_targets(
    conn: sqlite3.Connection,
    state: dict[str, Any],
    *,
    status: str | None,
    epoch: int | None,
    submitter: str | None,
    page_size: int | None,
    page_token: bytes | None,
    mask: Mask,
) -> tuple[list[Any], bytes | None]:
    """One page of targets in creation order; the statuses of §3.4 (expired reads "claimable")."""
    current = int(state["epoch"])
    wanted: TargetStatus | None = None
    if status:
        try:
            wanted = TargetStatus(status.lower())
        except ValueError:
            raise BadRequest(
                f"invalid status_filter: '{status}'. Must be 'open', 'filled', 'claimed', 'expired', or 'claimable'"
            ) from None
    where, args = status_clause(wanted, current)
    if epoch is not None:
        where, args = f"({where}) AND generation_epoch = ?", [*args, epoch]
    if submitter:
        where, args = f"({where}) AND submitter = ?", [*args, parse_id(submitter, "submitter_filter")]
    size = DEFAULT_TARGET_PAGE if not page_size else max(1, min(int(page_size), MAX_PAGE))
    if page_token and len(page_token) != 8:
        raise BadRequest("invalid page_token")
    after = int.from_bytes(page_token, "big") if page_token else 0
    rows = conn.execute(
        f"SELECT * FROM targets WHERE ({where}) AND seq > ? ORDER BY seq LIMIT ?", [*args, after, size + 1]
    ).fetchall()
    targets: list[Any] = []
    used = 0
    for row in rows[:size]:
        message = target_message(row, current, mask)
        used += message.ByteSize()
        targets.append(message)
        if used >= MAX_PAGE_BYTES:
            break
    more = len(targets) < len(rows)
    token = int(rows[len(targets) - 1]["seq"]).to_bytes(8, "big") if more and targets else None
    return targets, token
