"""Per-epoch snapshots of the board: the system state and parameters, the active models and the
recent and filled targets, written as Parquet under a folder (one sub-folder per epoch).

A snapshot of epoch E holds every target generated in E or E − 1 (any status) and every filled
target not yet claimed; only open targets keep their embedding (nothing reads the others', and on a
busy network, thousands of fills an epoch, they would be most of the bytes). Claimed targets are deleted on chain (§3.4), so a filled target is only
ever seen in the snapshots taken between its fill and its claim: one snapshot per epoch sees them
all (a claim is possible from fill_epoch + 2 at the earliest, §6).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from soma_ray.chain.base import Chain
from soma_ray.chain.errors import ObjectNotFound
from soma_ray.chain.types import ActiveModel, ModelStatus, NetworkInfo, Target, TargetStatus
from soma_ray.errors import SomaRayError
from soma_ray.protocol.constants import ProtocolParams

EPOCH_DIR = re.compile(r"^epoch-(\d{6,})$")
TABLES = ("system", "models", "targets")


class SnapshotError(SomaRayError):
    """A snapshot folder that is missing or cannot be read."""


@dataclass(frozen=True)
class ModelRow:
    """One model as the board saw it. The embedding is a tuple of float32 values, so rows compare
    and hash by value."""

    model_id: str
    owner: str
    stake: int
    commission_rate: int
    next_commission_rate: int
    state: str
    has_pending_update: bool
    embedding: tuple[float, ...]

    @property
    def vector(self) -> np.ndarray:
        return np.asarray(self.embedding, dtype=np.float32)


@dataclass(frozen=True)
class TargetRow:
    """One target as the board saw it; `winning_model_owner` is the winning model's owner. The
    embedding is empty unless the target was open when seen."""

    target_id: str
    status: str
    model_ids: tuple[str, ...]
    distance_threshold: float
    reward_pool: int
    generation_epoch: int
    fill_epoch: int | None
    submitter: str | None
    winning_model_id: str | None
    winning_model_owner: str | None
    bond_amount: int
    embedding: tuple[float, ...]

    @property
    def vector(self) -> np.ndarray:
        return np.asarray(self.embedding, dtype=np.float32)

    @property
    def filled(self) -> bool:
        return self.winning_model_id is not None


@dataclass(frozen=True)
class Snapshot:
    info: NetworkInfo
    models: tuple[ModelRow, ...]
    targets: tuple[TargetRow, ...]

    @property
    def epoch(self) -> int:
        return self.info.epoch

    @property
    def params(self) -> ProtocolParams:
        return self.info.params

    def model(self, model_id: str) -> ModelRow | None:
        return next((m for m in self.models if m.model_id == model_id), None)

    def open_targets(self) -> list[TargetRow]:
        return [t for t in self.targets if t.status == TargetStatus.OPEN]


def _floats(vector: np.ndarray) -> tuple[float, ...]:
    return tuple(np.asarray(vector, dtype=np.float32).ravel().tolist())


def model_row(model: ActiveModel) -> ModelRow:
    return ModelRow(
        model_id=model.model_id,
        owner=model.owner,
        stake=model.stake,
        commission_rate=model.commission_rate,
        next_commission_rate=model.next_epoch_commission_rate,
        state=ModelStatus.ACTIVE.value,
        has_pending_update=model.has_pending_update,
        embedding=_floats(model.embedding),
    )


def target_row(target: Target, owners: Mapping[str, str]) -> TargetRow:
    winner = target.winning_model_id
    return TargetRow(
        target_id=target.id,
        status=str(target.status),
        model_ids=tuple(target.model_ids),
        distance_threshold=float(target.distance_threshold),
        reward_pool=target.reward_pool,
        generation_epoch=target.generation_epoch,
        fill_epoch=target.fill_epoch,
        submitter=target.submitter,
        winning_model_id=winner,
        winning_model_owner=owners.get(winner) if winner else None,
        bond_amount=target.bond_amount,
        embedding=_floats(target.embedding) if target.status == TargetStatus.OPEN else (),
    )


async def take_snapshot(chain: Chain) -> Snapshot:
    """Read the board now: network info, active models, and the targets described above."""
    info = await chain.info()
    models = await chain.active_models()
    seen: dict[str, Target] = {}
    for epoch in (info.epoch - 1, info.epoch):
        if epoch >= 0:
            seen.update((t.id, t) for t in await chain.all_targets(epoch=epoch))
    seen.update((t.id, t) for t in await chain.all_targets(TargetStatus.FILLED))
    owners = {m.model_id: m.owner for m in models}
    for target in seen.values():  # a winner may have left the active set since its fill
        winner = target.winning_model_id
        if winner and winner not in owners:
            try:
                owners[winner] = (await chain.get_model(winner)).owner
            except ObjectNotFound:
                pass
    return Snapshot(
        info=info,
        models=tuple(model_row(m) for m in models),
        targets=tuple(target_row(t, owners) for t in sorted(seen.values(), key=lambda t: t.id)),
    )


# -- Parquet -------------------------------------------------------------------------------------

def _schemas() -> dict[str, Any]:
    import pyarrow as pa  # type: ignore[import-untyped]  # heavy: only where snapshots are stored

    vector = pa.list_(pa.float32())
    return {
        "system": pa.schema([
            ("chain", pa.string()), ("epoch", pa.int64()), ("protocol_version", pa.int64()),
            ("params", pa.string()), ("distance_threshold", pa.float64()), ("reward_per_target", pa.uint64()),
            ("emission_pool_balance", pa.uint64()), ("emission_per_epoch", pa.uint64()),
            ("hits_this_epoch", pa.int64()), ("hits_ema", pa.int64()), ("targets_generated_this_epoch", pa.int64()),
            ("epoch_start_ms", pa.int64()), ("value_fee_bps", pa.int64()),
        ]),
        "models": pa.schema([
            ("model_id", pa.string()), ("owner", pa.string()), ("stake", pa.uint64()),
            ("commission_rate", pa.int64()), ("next_commission_rate", pa.int64()), ("state", pa.string()),
            ("has_pending_update", pa.bool_()), ("embedding", vector),
        ]),
        "targets": pa.schema([
            ("target_id", pa.string()), ("status", pa.string()), ("model_ids", pa.list_(pa.string())),
            ("distance_threshold", pa.float64()), ("reward_pool", pa.uint64()), ("generation_epoch", pa.int64()),
            ("fill_epoch", pa.int64()), ("submitter", pa.string()), ("winning_model_id", pa.string()),
            ("winning_model_owner", pa.string()), ("bond_amount", pa.uint64()), ("embedding", vector),
        ]),
    }


def _system_record(info: NetworkInfo) -> dict[str, Any]:
    record = {f.name: getattr(info, f.name) for f in fields(info)}
    record["params"] = json.dumps(info.params.to_dict(), sort_keys=True)
    return record


def _info(record: dict[str, Any]) -> NetworkInfo:
    return NetworkInfo(**{**record, "params": ProtocolParams.from_dict(json.loads(record["params"]))})


class SnapshotStore:
    """Snapshots under `root`, one folder per epoch (`epoch-000042/{system,models,targets}.parquet`).
    Writing an epoch again replaces it whole; a folder is renamed into place only once complete."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, epoch: int) -> Path:
        return self.root / f"epoch-{epoch:06d}"

    def epochs(self) -> list[int]:
        if not self.root.is_dir():
            return []
        found = (EPOCH_DIR.match(p.name) for p in self.root.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def write(self, snapshot: Snapshot) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        schemas = _schemas()
        rows: dict[str, list[dict[str, Any]]] = {
            "system": [_system_record(snapshot.info)],
            "models": [asdict(m) for m in snapshot.models],
            "targets": [asdict(t) for t in snapshot.targets],
        }
        final = self.path(snapshot.epoch)
        staging = self.root / f".{final.name}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            for table in TABLES:
                pq.write_table(pa.Table.from_pylist(rows[table], schema=schemas[table]), staging / f"{table}.parquet")
            old = self.root / f".{final.name}.{os.getpid()}.old"
            if final.exists():
                final.rename(old)
            staging.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final

    def read(self, epoch: int) -> Snapshot:
        import pyarrow.parquet as pq

        folder = self.path(epoch)
        if not folder.is_dir():
            raise SnapshotError(f"no snapshot of epoch {epoch} under {self.root}: take one first (have: {self.epochs()})")
        try:
            tables = {t: pq.read_table(folder / f"{t}.parquet").to_pylist() for t in TABLES}
        except (OSError, ValueError) as err:
            raise SnapshotError(f"snapshot {folder} cannot be read ({err}): delete it and take it again") from err
        return Snapshot(
            info=_info(tables["system"][0]),
            models=tuple(ModelRow(**{**r, "embedding": tuple(r["embedding"])}) for r in tables["models"]),
            targets=tuple(
                TargetRow(**{**r, "model_ids": tuple(r["model_ids"]), "embedding": tuple(r["embedding"])})
                for r in tables["targets"]
            ),
        )

    def read_all(self, epochs: Iterable[int] | None = None) -> list[Snapshot]:
        """Snapshots in epoch order (all of them by default)."""
        return [self.read(e) for e in sorted(self.epochs() if epochs is None else epochs)]
