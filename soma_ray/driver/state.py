"""The driver's durable ledger (SQLite): every on-chain action is recorded before it is sent
and its outcome after, under an idempotency key, so a restarted driver knows what it did.

Keys: `submit:<target>`, `create_model`, `commit:<model>:<weights blake2b>`,
`reveal:<model>:<commit epoch>`, `claim:<target>`, `stake:<request id>`, `withdraw:<staked object>`,
`commission:<model>:<epoch>:<rate>`. Statuses (`ActionStatus`, stored as their values):
`intended` (recorded, maybe sent), `done`, `waiting` (retry later, e.g. AuditWindowOpen), `failed`
(final), `interrupted` (reconciliation found it never landed; it may be tried again). Payloads are
the JSON of the kind's payload dataclass (`actions.py`).

The file holds decryption keys of models not yet revealed: it is created mode 0600.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, overload

from soma_ray.driver.actions import (
    OPEN_STATUSES,
    Action,
    ActionKind,
    ActionStatus,
    ClaimPayload,
    CreateModelPayload,
    Payload,
    StakePayload,
    SubmitPayload,
    WithdrawPayload,
    payload_from_json,
)
from soma_ray.driver.results import Ledger

SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, epoch INTEGER NOT NULL,
    payload TEXT NOT NULL, digest TEXT, fee INTEGER NOT NULL DEFAULT 0, amount INTEGER NOT NULL DEFAULT 0,
    error TEXT, attempts INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

P = TypeVar("P", bound=Payload)


class DriverState:
    """One SQLite file per wallet; safe across processes (WAL, immediate transactions)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
        if fresh:
            os.chmod(self.path, 0o600)  # holds decryption keys until they are revealed
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    # -- actions ---------------------------------------------------------------------------

    @overload
    def get(self, key: str) -> Action[Payload] | None: ...

    @overload
    def get(self, key: str, kind: type[P]) -> Action[P] | None: ...

    def get(self, key: str, kind: type[Payload] | None = None) -> Action[Any] | None:
        """The action recorded under `key`; with `kind` (a payload class), one of that kind."""
        row = self._conn.execute("SELECT * FROM actions WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        action = _action(row)
        if kind is not None and not isinstance(action.payload, kind):
            raise TypeError(f"ledger action {key} is a {action.kind}, not a {kind.KIND}")
        return action

    def record(self, key: str, epoch: int, payload: Payload, amount: int = 0) -> bool:
        """Record an intended action (its kind is its payload's); False if the key is already live
        (intended/waiting/done)."""
        now = time.time()
        with self._tx() as conn:
            row = conn.execute("SELECT status FROM actions WHERE key = ?", (key,)).fetchone()
            if row is not None and row["status"] not in (ActionStatus.INTERRUPTED, ActionStatus.FAILED):
                return False
            conn.execute(
                "INSERT INTO actions (key, kind, status, epoch, payload, amount, attempts, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET status=excluded.status, epoch=excluded.epoch,"
                " payload=excluded.payload, amount=excluded.amount, error=NULL, attempts=attempts+1,"
                " updated=excluded.updated",
                (key, payload.KIND.value, ActionStatus.INTENDED.value, epoch, payload.to_json(), amount, now, now),
            )
        return True

    def finish(
        self, key: str, status: ActionStatus, *, digest: str | None = None, fee: int = 0, error: str | None = None,
        payload: Payload | None = None,
    ) -> None:
        """The outcome of an action; `payload` (the recorded one with fields filled in) is merged
        over the stored JSON."""
        with self._tx() as conn:
            if payload is not None:
                merged = {**json.loads(conn.execute("SELECT payload FROM actions WHERE key = ?", (key,))
                                       .fetchone()["payload"]), **payload.to_dict()}
                conn.execute("UPDATE actions SET payload = ? WHERE key = ?", (json.dumps(merged), key))
            conn.execute(
                "UPDATE actions SET status = ?, digest = COALESCE(?, digest), fee = fee + ?, error = ?, updated = ?"
                " WHERE key = ?",
                (ActionStatus(status).value, digest, fee, error, time.time(), key),
            )

    def add_fee(self, key: str, fee: int) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE actions SET fee = fee + ?, updated = ? WHERE key = ?", (fee, time.time(), key))

    @overload
    def actions(self, kind: type[P], statuses: Sequence[ActionStatus] | None = None) -> list[Action[P]]: ...

    @overload
    def actions(
        self, kind: ActionKind | None = None, statuses: Sequence[ActionStatus] | None = None
    ) -> list[Action[Payload]]: ...

    def actions(
        self, kind: type[Payload] | ActionKind | None = None, statuses: Sequence[ActionStatus] | None = None
    ) -> list[Action[Any]]:
        """Actions in the order they were first recorded: of one kind (a payload class, which
        types the payloads, or an `ActionKind`), in the given states."""
        query, args = "SELECT * FROM actions WHERE 1=1", []
        if kind is not None:
            query += " AND kind = ?"
            args.append(ActionKind(kind.KIND if isinstance(kind, type) else kind).value)
        if statuses:
            query += f" AND status IN ({','.join('?' * len(statuses))})"
            args.extend(ActionStatus(s).value for s in statuses)
        return [_action(r) for r in self._conn.execute(query + " ORDER BY created", args)]

    # -- meta (small facts: the model id, fired failpoints, the starting balance) -----------

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row["value"]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                         (key, value, value))

    def ledger(self) -> Ledger:
        """The running totals of what this wallet's actions moved (what `soma-ray driver status` shows)."""
        submits = self.actions(SubmitPayload, (ActionStatus.DONE,))
        claims = self.actions(ClaimPayload, (ActionStatus.DONE,))
        return Ledger(
            start_balance=int(self.meta("start_balance") or 0),
            model_stake=sum(a.amount for a in self.actions(CreateModelPayload, (ActionStatus.DONE,))),
            staked=sum(a.payload.amount for a in self.actions(StakePayload, (ActionStatus.DONE,))),
            unstaked=sum(a.payload.principal for a in self.actions(WithdrawPayload, (ActionStatus.DONE,))),
            submissions=len(submits),
            bonds_locked=sum(a.amount for a in submits),
            bonds_returned=sum(a.payload.bond_returned for a in claims),
            rewards_as_submitter=sum(a.payload.as_submitter for a in claims),
            rewards_as_model_owner=sum(a.payload.as_model_owner for a in claims),
            claimer_incentives=sum(a.payload.as_claimer for a in claims),
            claims=len(claims),
            fees=sum(a.fee for a in self.actions()),
        )

    def spent_in_epoch(self, epoch: int) -> int:
        """Bonds locked and fees paid by actions recorded in `epoch`."""
        row = self._conn.execute(
            "SELECT COALESCE(SUM(fee), 0) + COALESCE(SUM(CASE WHEN kind = ? AND status != ?"
            " THEN amount ELSE 0 END), 0) AS spent FROM actions WHERE epoch = ?",
            (ActionKind.SUBMIT.value, ActionStatus.FAILED.value, epoch),
        ).fetchone()
        return int(row["spent"])


def _action(row: sqlite3.Row) -> Action[Payload]:
    return Action(
        key=row["key"], kind=ActionKind(row["kind"]), status=ActionStatus(row["status"]), epoch=row["epoch"],
        payload=payload_from_json(row["kind"], row["payload"]), digest=row["digest"], fee=row["fee"],
        amount=row["amount"], error=row["error"], attempts=row["attempts"],
    )


__all__ = ["OPEN_STATUSES", "Action", "ActionKind", "ActionStatus", "DriverState"]
