"""The driver's durable ledger (SQLite): every on-chain action is recorded before it is sent
and its outcome after, under an idempotency key, so a restarted driver knows what it did.

Keys: `submit:<target>`, `create_model`, `commit:<model>:<weights blake2b>`,
`reveal:<model>:<commit epoch>`, `claim:<target>`. Statuses: `intended` (recorded, maybe sent),
`done`, `waiting` (retry later, e.g. AuditWindowOpen), `failed` (final), `interrupted`
(reconciliation found it never landed; it may be tried again).

The file holds decryption keys of models not yet revealed: it is created mode 0600.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, epoch INTEGER NOT NULL,
    payload TEXT NOT NULL, digest TEXT, fee INTEGER NOT NULL DEFAULT 0, amount INTEGER NOT NULL DEFAULT 0,
    error TEXT, attempts INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

OPEN_STATUSES = ("intended", "waiting")


@dataclass(frozen=True)
class Action:
    key: str
    kind: str
    status: str
    epoch: int
    payload: dict[str, Any]
    digest: str | None
    fee: int
    amount: int
    error: str | None
    attempts: int


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

    def get(self, key: str) -> Action | None:
        row = self._conn.execute("SELECT * FROM actions WHERE key = ?", (key,)).fetchone()
        return _action(row) if row else None

    def record(self, key: str, kind: str, epoch: int, payload: dict[str, Any], amount: int = 0) -> bool:
        """Record an intended action; False if the key is already live (intended/waiting/done)."""
        now = time.time()
        with self._tx() as conn:
            row = conn.execute("SELECT status FROM actions WHERE key = ?", (key,)).fetchone()
            if row is not None and row["status"] not in ("interrupted", "failed"):
                return False
            conn.execute(
                "INSERT INTO actions (key, kind, status, epoch, payload, amount, attempts, created, updated)"
                " VALUES (?, ?, 'intended', ?, ?, ?, 1, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET status='intended', epoch=excluded.epoch, payload=excluded.payload,"
                " amount=excluded.amount, error=NULL, attempts=attempts+1, updated=excluded.updated",
                (key, kind, epoch, json.dumps(payload), amount, now, now),
            )
        return True

    def finish(
        self, key: str, status: str, *, digest: str | None = None, fee: int = 0, error: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        with self._tx() as conn:
            if payload is not None:
                merged = {**json.loads(conn.execute("SELECT payload FROM actions WHERE key = ?", (key,))
                                       .fetchone()["payload"]), **payload}
                conn.execute("UPDATE actions SET payload = ? WHERE key = ?", (json.dumps(merged), key))
            conn.execute(
                "UPDATE actions SET status = ?, digest = COALESCE(?, digest), fee = fee + ?, error = ?, updated = ?"
                " WHERE key = ?",
                (status, digest, fee, error, time.time(), key),
            )

    def add_fee(self, key: str, fee: int) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE actions SET fee = fee + ?, updated = ? WHERE key = ?", (fee, time.time(), key))

    def actions(self, kind: str | None = None, statuses: tuple[str, ...] | None = None) -> list[Action]:
        query, args = "SELECT * FROM actions WHERE 1=1", []
        if kind is not None:
            query += " AND kind = ?"
            args.append(kind)
        if statuses:
            query += f" AND status IN ({','.join('?' * len(statuses))})"
            args.extend(statuses)
        return [_action(r) for r in self._conn.execute(query + " ORDER BY created", args)]

    # -- meta (small facts: the model id, fired failpoints, the starting balance) -----------

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row["value"]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                         (key, value, value))

    def spent_in_epoch(self, epoch: int) -> int:
        """Bonds locked and fees paid by actions recorded in `epoch`."""
        row = self._conn.execute(
            "SELECT COALESCE(SUM(fee), 0) + COALESCE(SUM(CASE WHEN kind = 'submit' AND status != 'failed'"
            " THEN amount ELSE 0 END), 0) AS spent FROM actions WHERE epoch = ?",
            (epoch,),
        ).fetchone()
        return int(row["spent"])


def _action(row: sqlite3.Row) -> Action:
    return Action(
        key=row["key"], kind=row["kind"], status=row["status"], epoch=row["epoch"],
        payload=json.loads(row["payload"]), digest=row["digest"], fee=row["fee"], amount=row["amount"],
        error=row["error"], attempts=row["attempts"],
    )
