"""SQLite persistence of the simulated network: schema, system state, coins, tx bookkeeping.

Every transaction is one `BEGIN IMMEDIATE` SQLite transaction, so several processes (the CLI,
Ray actors, tests) can share one network file and see each transaction whole or not at all.

Objects carry Lamport versions and the digest of the transaction that last wrote them, as on the
chain (protocol.md §13.3): a transaction's inputs are remembered as they were before it
(`TxContext.snapshot`), and when it finishes every input that still exists and every object it
created is written at version max(input versions) + 1 with this transaction as its previous
transaction; deleted objects leave a tombstone at that version. `migrate` adds the columns this
needs to a network file made before (their defaults read as the file always did).
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
from soma_ray.chain.sim.objects import SYSTEM_STATE_ID, load_object
from soma_ray.chain.types import Coin
from soma_ray.protocol.commitments import blake2b256, derive_id
from soma_ray.protocol.fees import FeeParts
from soma_ray.protocol.wire.objects import Object

__all__ = ["SYSTEM_STATE_ID"]

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
CREATE TABLE IF NOT EXISTS tombstones (id TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS txs_by_digest ON txs (digest);
"""

# Columns added after the first schema: (table, column, declaration). A file made before gets them
# with these defaults: version 1 and no previous transaction read as "as genesis left it", except
# coins, whose `version` always was the sequence number of their last transaction.
MIGRATIONS = (
    ("coins", "prev_tx", "TEXT"),
    ("targets", "version", "INTEGER NOT NULL DEFAULT 1"),
    ("targets", "prev_tx", "TEXT"),
    ("staked", "version", "INTEGER NOT NULL DEFAULT 1"),
    ("staked", "prev_tx", "TEXT"),
    ("system", "version", "INTEGER NOT NULL DEFAULT 1"),
    ("system", "prev_tx", "TEXT"),
    ("txs", "lamport", "INTEGER"),
    ("models", "pending_withdraw", "INTEGER NOT NULL DEFAULT 0"),
)


def migrate(conn: sqlite3.Connection) -> None:
    """Create missing tables and add missing columns (idempotent, safe between processes)."""
    conn.executescript(SCHEMA)
    with immediate(conn):
        for table, column, declaration in MIGRATIONS:
            present = {r["name"] for r in conn.execute(f"PRAGMA table_info({table})").fetchall()}
            if column not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


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
    """Bookkeeping of one transaction: its digest, the objects it writes, the fee it owes.

    `created`/`mutated` are the objects the transaction's rules write (what the write fee counts),
    `deleted` those it removes. `inputs` holds every object the transaction reads for writing as it
    was before the transaction (`snapshot`): all of them are written again when it finishes, like
    the chain's mutable inputs, whether the rules changed them or not.
    """

    seq: int
    digest: bytes
    sender: str
    created: list[str] = field(default_factory=list)
    mutated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    value_fee: int = 0
    _creation_num: int = 0
    conn: sqlite3.Connection | None = field(default=None, repr=False, compare=False)
    inputs: dict[str, Object] = field(default_factory=dict)
    lamport: int | None = None
    fee: FeeParts = field(default_factory=FeeParts)

    def snapshot(self, object_id: str) -> None:
        """Remember `object_id` as it is now, before this transaction writes it (once)."""
        if object_id in self.inputs or object_id in self.created or self.conn is None:
            return
        obj = load_object(self.conn, object_id)
        if obj is not None:
            self.inputs[object_id] = obj

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
        """`object_id` is written by this transaction's rules (counted by the write fee)."""
        self.snapshot(object_id)
        if object_id not in self.mutated and object_id not in self.created:
            self.mutated.append(object_id)

    def written_objects(self) -> int:
        return len(self.created) + len(self.mutated)


def begin_tx(
    conn: sqlite3.Connection, sender: str, kind: str, epoch: int, *, digest: bytes | None = None
) -> TxContext:
    """Record the transaction. `digest` is a signed transaction's real digest; the sim's own
    transactions (its Python API, system transactions) derive one from the network's tx sequence."""
    cur = conn.execute(
        "INSERT INTO txs (sender, kind, epoch) VALUES (?, ?, ?)", (sender, kind, epoch)
    )
    seq = int(cur.lastrowid or 0)
    if digest is None:
        chain_id = load_state(conn)["chain_id"]
        digest = blake2b256(f"{chain_id}:{seq}:{sender}:{kind}".encode() + struct.pack("<Q", seq))
    ctx = TxContext(seq=seq, digest=digest, sender=sender, conn=conn)
    conn.execute("UPDATE txs SET digest = ? WHERE seq = ?", (ctx.digest_b58, seq))
    return ctx


def finish_tx(conn: sqlite3.Connection, ctx: TxContext, *, ok: bool, fee: int, error: str | None) -> None:
    """Record the outcome and write every input and created object at the Lamport version."""
    lamport = max((obj.version for obj in ctx.inputs.values()), default=0) + 1
    ctx.lamport = lamport
    deleted = set(ctx.deleted)
    written = [oid for oid in ctx.inputs if oid not in deleted]
    written += [oid for oid in ctx.created if oid not in deleted and oid not in ctx.inputs]
    for object_id in written:
        _write_version(conn, object_id, lamport, ctx.digest_b58)
    for object_id in ctx.deleted:
        conn.execute(
            "INSERT INTO tombstones (id, version) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET version = excluded.version",
            (object_id, lamport),
        )
    conn.execute(
        "UPDATE txs SET ok = ?, fee = ?, error = ?, lamport = ? WHERE seq = ?",
        (int(ok), fee, error, lamport, ctx.seq),
    )


def _write_version(conn: sqlite3.Connection, object_id: str, version: int, prev_tx: str) -> None:
    if object_id == SYSTEM_STATE_ID:
        conn.execute("UPDATE system SET version = ?, prev_tx = ? WHERE id = 1", (version, prev_tx))
        return
    for table in ("coins", "targets", "staked"):
        cur = conn.execute(f"UPDATE {table} SET version = ?, prev_tx = ? WHERE id = ?", (version, prev_tx, object_id))
        if cur.rowcount:
            return


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
    """A new coin; its version and previous transaction are set when the transaction finishes."""
    coin_id = ctx.new_object_id()
    conn.execute(
        "INSERT INTO coins (id, owner, balance, version, prev_tx) VALUES (?, ?, ?, 0, ?)",
        (coin_id, owner, amount, ctx.digest_b58),
    )
    return coin_id


def set_coin_balance(conn: sqlite3.Connection, ctx: TxContext, coin_id: str, balance: int) -> None:
    ctx.touch(coin_id)
    conn.execute("UPDATE coins SET balance = ? WHERE id = ?", (balance, coin_id))


def set_coin_owner(conn: sqlite3.Connection, ctx: TxContext, coin_id: str, owner: str) -> None:
    ctx.touch(coin_id)
    conn.execute("UPDATE coins SET owner = ? WHERE id = ?", (owner, coin_id))


def delete_coin(conn: sqlite3.Connection, ctx: TxContext, coin_id: str) -> None:
    ctx.snapshot(coin_id)
    conn.execute("DELETE FROM coins WHERE id = ?", (coin_id,))
    ctx.deleted.append(coin_id)
    if coin_id in ctx.mutated:
        ctx.mutated.remove(coin_id)


def delete_object(conn: sqlite3.Connection, ctx: TxContext, table: str, object_id: str) -> None:
    """Delete a row of `targets` or `staked` as an object deletion."""
    ctx.snapshot(object_id)
    conn.execute(f"DELETE FROM {table} WHERE id = ?", (object_id,))
    ctx.deleted.append(object_id)
    if object_id in ctx.mutated:
        ctx.mutated.remove(object_id)
