"""Small records the jobs keep beside the driver's ledger for the epoch review (`records.db`):
the submitter's near misses and the compute each job used (wall time × GPUs).

Bounded: each table keeps its newest `KEEP` rows. SQLite in WAL mode, so the submitter, the
cycle and the driver actor may write and read it at once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

KEEP = 5000
FILE = "records.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS near_misses (
    id INTEGER PRIMARY KEY AUTOINCREMENT, epoch INTEGER NOT NULL, target_id TEXT NOT NULL,
    model_id TEXT NOT NULL, distance REAL NOT NULL, threshold REAL NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS compute (
    id INTEGER PRIMARY KEY AUTOINCREMENT, epoch INTEGER NOT NULL, job TEXT NOT NULL,
    wall_s REAL NOT NULL, gpus REAL NOT NULL, at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class NearMiss:
    epoch: int
    target_id: str
    model_id: str
    distance: float
    threshold: float

    @property
    def gap(self) -> float:
        return self.distance - self.threshold


@dataclass(frozen=True)
class ComputeUse:
    epoch: int  # the epoch the job ended in
    job: str  # e.g. "submit", "train"
    wall_s: float
    gpus: float

    @property
    def gpu_hours(self) -> float:
        return self.wall_s * self.gpus / 3600


def records_path(state_path: Path) -> Path:
    """Beside the driver's ledger (`driver.state_path`)."""
    return Path(state_path).parent / FILE


class Records:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            with conn:
                yield conn
        finally:
            conn.close()

    def _trim(self, conn: sqlite3.Connection, table: str) -> None:
        conn.execute(f"DELETE FROM {table} WHERE id <= (SELECT MAX(id) FROM {table}) - ?", (KEEP,))

    def add_near_miss(self, miss: NearMiss) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO near_misses (epoch, target_id, model_id, distance, threshold, at) VALUES (?, ?, ?, ?, ?, ?)",
                (miss.epoch, miss.target_id, miss.model_id, miss.distance, miss.threshold, time.time()),
            )
            self._trim(conn, "near_misses")

    def add_compute(self, use: ComputeUse) -> None:
        with self._conn() as conn:
            conn.execute("INSERT INTO compute (epoch, job, wall_s, gpus, at) VALUES (?, ?, ?, ?, ?)",
                         (use.epoch, use.job, use.wall_s, use.gpus, time.time()))
            self._trim(conn, "compute")

    def near_misses(self) -> list[NearMiss]:
        if not self.path.is_file():
            return []
        with self._conn() as conn:
            rows = conn.execute("SELECT epoch, target_id, model_id, distance, threshold FROM near_misses ORDER BY id")
            return [NearMiss(int(e), str(t), str(m), float(d), float(h)) for e, t, m, d, h in rows]

    def compute(self) -> list[ComputeUse]:
        if not self.path.is_file():
            return []
        with self._conn() as conn:
            rows = conn.execute("SELECT epoch, job, wall_s, gpus FROM compute ORDER BY id")
            return [ComputeUse(int(e), str(j), float(w), float(g)) for e, j, w, g in rows]
