"""Helpers of the chain tests: where every shannon of a simulated network is (conservation checks)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def total_supply(db_path: Path) -> int:
    """Coins + model stakes (active and pending, less pending withdrawals) + the emission pool + what targets hold (reward
    pools, bonds) + the epoch's fees + the validators' rewards. Only the faucet adds to it and
    only slashing takes from it (§5: slashed SOMA is burned)."""
    with sqlite3.connect(db_path) as conn:
        state = json.loads(conn.execute("SELECT state FROM system").fetchone()[0])
        coins = conn.execute("SELECT COALESCE(SUM(balance), 0) FROM coins").fetchone()[0]
        stakes = conn.execute(
            "SELECT COALESCE(SUM(stake + pending_stake - pending_withdraw), 0) FROM models"
        ).fetchone()[0]
        held = conn.execute("SELECT COALESCE(SUM(reward_pool + bond_amount), 0) FROM targets").fetchone()[0]
    return int(coins + stakes + held + state["emission_pool"]["balance"] + state["fees_this_epoch"]
               + state["validator_rewards"])


def faucet_minted(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        state = json.loads(conn.execute("SELECT state FROM system").fetchone()[0])
        count = conn.execute("SELECT COUNT(*) FROM txs WHERE kind = 'Faucet' AND ok = 1").fetchone()[0]
    return int(count * state["faucet_amount"])
