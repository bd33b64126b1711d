"""SQLite persistence of the simulated network: schema, system state, coins, tx bookkeeping.

Every transaction is one `BEGIN IMMEDIATE` SQLite transaction, so several processes (the CLI,
Ray actors, tests) can share one network file and see each transaction whole or not at all.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import base58
import numpy as np

from soma_ray.chain.errors import ObjectNotFound
from soma_ray.chain.types import Coin
from soma_ray.protocol.commitments import blake2b256, derive_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS system (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS txs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, digest TEXT, sender TEXT, kind TEXT NOT NULL,
    epoch INTEGER NOT NULL, ok INTEGER, error TEXT, fee INTEGER
);
CREATE TABLE IF NOT EXISTS coins (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, balance INTEGER NOT NULL, version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS coins_by_owner ON coins (owner);
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL,
    create_epoch INTEGER NOT NULL, commit_epoch INTEGER, activation_epoch INTEGER,
    stake INTEGER NOT NULL, pending_stake INTEGER NOT NULL DEFAULT 0, pool_active INTEGER NOT NULL,
    commission_rate INTEGER NOT NULL, next_commission_rate INTEGER NOT NULL,
    commitments TEXT, decryption_key TEXT, embedding BLOB, pending_update TEXT
);
CREATE TABLE IF NOT EXISTS staked (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, model_id TEXT NOT NULL,
    amount INTEGER NOT NULL, stake_epoch INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS targets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, seed TEXT NOT NULL,
    embedding BLOB NOT NULL, model_ids TEXT NOT NULL, distance_threshold REAL NOT NULL,
    reward_pool INTEGER NOT NULL, generation_epoch INTEGER NOT NULL, status TEXT NOT NULL,
    fill_epoch INTEGER, submitter TEXT, winning_model_id TEXT, winning_model_owner TEXT,
    bond_amount INTEGER NOT NULL DEFAULT 0, data_url TEXT, data_checksum TEXT, data_size INTEGER,
    winning_embedding BLOB, winning_distance REAL, winning_loss TEXT
);
CREATE INDEX IF NOT EXISTS targets_by_epoch ON targets (generation_epoch, status);
"""


# Models, pools and counters live inside the one shared SystemState object (§4.3 fee counting).
SYSTEM_STATE_ID = "0x0000000000000000000000000000000000000000000000000000000000000005"


def connect(db_path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode; callers open explicit IMMEDIATE transactions."""
    conn = sqlite3.connect(db_path, timeout=60.0, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic write transaction; the write lock is taken up front to avoid upgrade deadlocks."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def f32_blob(values: Any) -> bytes:
    return np.asarray(values, dtype="<f4").ravel().tobytes()


def f32_array(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").copy()


def load_state(conn: sqlite3.Connection) -> dict[str, Any]:
    row = conn.execute("SELECT state FROM system WHERE id = 1").fetchone()
    if row is None:
        raise ObjectNotFound("simulated network has no genesis yet")
    state: dict[str, Any] = json.loads(row["state"])
    return state


def save_state(conn: sqlite3.Connection, state: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO system (id, state) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state",
        (json.dumps(state, sort_keys=True),),
    )


@dataclass
class TxContext:
    """Bookkeeping of one transaction: its digest, the objects it writes, the fee it owes."""

    seq: int
    digest: bytes
    sender: str
    created: list[str] = field(default_factory=list)
    mutated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    value_fee: int = 0
    _creation_num: int = 0

    @property
    def digest_b58(self) -> str:
        return base58.b58encode(self.digest).decode()

    def peek_creation_num(self) -> int:
        return self._creation_num

    def next_creation_num(self) -> int:
        n = self._creation_num
        self._creation_num += 1
        return n

    def derive_id(self) -> str:
        """ObjectID::derive_id(tx_digest, creation_num) (§2.3), consuming one creation number."""
        return derive_id(self.digest, self.next_creation_num())

    def new_object_id(self) -> str:
        """The id of a new top-level object, which counts as written for the fee."""
        oid = self.derive_id()
        self.created.append(oid)
        return oid

    def touch(self, object_id: str) -> None:
        if object_id not in self.mutated and object_id not in self.created:
            self.mutated.append(object_id)

    def written_objects(self) -> int:
        return len(self.created) + len(self.mutated)


def begin_tx(conn: sqlite3.Connection, sender: str, kind: str, epoch: int) -> TxContext:
    """Record the transaction and derive its digest from the network's tx sequence."""
    cur = conn.execute(
        "INSERT INTO txs (sender, kind, epoch) VALUES (?, ?, ?)", (sender, kind, epoch)
    )
    seq = int(cur.lastrowid or 0)
    chain_id = load_state(conn)["chain_id"]
    digest = blake2b256(f"{chain_id}:{seq}:{sender}:{kind}".encode() + struct.pack("<Q", seq))
    ctx = TxContext(seq=seq, digest=digest, sender=sender)
    conn.execute("UPDATE txs SET digest = ? WHERE seq = ?", (ctx.digest_b58, seq))
    return ctx


def finish_tx(conn: sqlite3.Connection, ctx: TxContext, *, ok: bool, fee: int, error: str | None) -> None:
    conn.execute(
        "UPDATE txs SET ok = ?, fee = ?, error = ? WHERE seq = ?", (int(ok), fee, error, ctx.seq)
    )


# -- coins -------------------------------------------------------------------------------------


def coin_rows(conn: sqlite3.Connection, owner: str) -> list[Coin]:
    rows = conn.execute(
        "SELECT id, owner, balance FROM coins WHERE owner = ? ORDER BY balance DESC, id", (owner,)
    ).fetchall()
    return [Coin(id=r["id"], owner=r["owner"], balance=r["balance"]) for r in rows]


def get_coin(conn: sqlite3.Connection, coin_id: str) -> Coin | None:
    r = conn.execute("SELECT id, owner, balance FROM coins WHERE id = ?", (coin_id,)).fetchone()
    return Coin(id=r["id"], owner=r["owner"], balance=r["balance"]) if r else None


def mint_coin(conn: sqlite3.Connection, ctx: TxContext, owner: str, amount: int) -> str:
    coin_id = ctx.new_object_id()
    conn.execute(
        "INSERT INTO coins (id, owner, balance, version) VALUES (?, ?, ?, ?)",
        (coin_id, owner, amount, ctx.seq),
    )
    return coin_id


def set_coin_balance(conn: sqlite3.Connection, ctx: TxContext, coin_id: str, balance: int) -> None:
    conn.execute(
        "UPDATE coins SET balance = ?, version = ? WHERE id = ?", (balance, ctx.seq, coin_id)
    )
    ctx.touch(coin_id)


def delete_coin(conn: sqlite3.Connection, ctx: TxContext, coin_id: str) -> None:
    conn.execute("DELETE FROM coins WHERE id = ?", (coin_id,))
    ctx.deleted.append(coin_id)
    if coin_id in ctx.mutated:
        ctx.mutated.remove(coin_id)
