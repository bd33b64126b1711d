"""The ledger's file format: typed payloads are stored as the same JSON objects as before they were
typed (same keys, same order), states and kinds as the same strings; older rows read back."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from soma_ray.driver.actions import (
    ActionKind,
    ActionStatus,
    ClaimPayload,
    CommitPayload,
    CreateModelPayload,
    RevealPayload,
    SubmitPayload,
)
from soma_ray.driver.state import DriverState

SUBMIT = SubmitPayload(target_id="0xt", url="http://x/d.bin", size=3, checksum="C", model_id="0xm", distance=0.5,
                       loss=1.25)
COMMIT = CommitPayload(model_id="0xm", url="http://x/m.enc", checksum="E", size=9, decryption_key="K",
                       embedding=[0.5, -1.0], manifest_path="/a/manifest.json", update=False, heldout_loss=4.5)


def _row(state: DriverState, key: str) -> sqlite3.Row:
    conn = sqlite3.connect(state.path)
    conn.row_factory = sqlite3.Row
    row: sqlite3.Row = conn.execute("SELECT * FROM actions WHERE key = ?", (key,)).fetchone()
    return row


def test_payloads_keep_the_stored_json_layout(tmp_path: Path) -> None:
    state = DriverState(tmp_path / "driver.db")
    state.record("submit:0xt", 3, SUBMIT, amount=195)
    row = _row(state, "submit:0xt")
    assert (row["kind"], row["status"], row["amount"]) == ("submit", "intended", 195)
    assert row["payload"] == json.dumps({"target_id": "0xt", "url": "http://x/d.bin", "size": 3, "checksum": "C",
                                         "model_id": "0xm", "distance": 0.5, "loss": 1.25})
    state.finish("submit:0xt", ActionStatus.DONE, digest="D", fee=7, payload=replace(SUBMIT, fill_epoch=3))
    row = _row(state, "submit:0xt")
    assert row["status"] == "done" and json.loads(row["payload"])["fill_epoch"] == 3
    assert list(json.loads(row["payload"]))[-1] == "fill_epoch"  # appended, as the dict merge did

    state.record("commit:0xm:W", 3, COMMIT)
    assert list(json.loads(_row(state, "commit:0xm:W")["payload"])) == [
        "model_id", "url", "checksum", "size", "decryption_key", "embedding", "manifest_path", "update", "heldout_loss"]
    state.record("reveal:0xm:3", 5, RevealPayload(model_id="0xm"))
    assert _row(state, "reveal:0xm:3")["payload"] == '{"model_id": "0xm"}'  # a missed reveal: no checksum
    state.record("claim:0xt", 5, ClaimPayload(target_id="0xt", fill_epoch=None, as_claimer=2))
    assert json.loads(_row(state, "claim:0xt")["payload"]) == {
        "target_id": "0xt", "fill_epoch": None, "as_submitter": 0, "as_model_owner": 0, "as_claimer": 2,
        "bond_returned": 0}


def test_rows_written_before_the_types_read_back_typed(tmp_path: Path) -> None:
    state = DriverState(tmp_path / "driver.db")
    legacy = {  # as the untyped driver wrote them (a commit from before `update` and `heldout_loss`)
        "create_model": ("create_model", "done", {"stake": 10, "model_id": "0xm"}),
        "commit:0xm:W": ("commit", "done", {"model_id": "0xm", "url": "u", "checksum": "E", "size": 9,
                                            "decryption_key": "K", "embedding": [0.5], "manifest_path": "/m",
                                            "commit_epoch": 4}),
        "claim:0xt": ("claim", "waiting", {"target_id": "0xt", "fill_epoch": None}),
        "merge:D": ("merge", "done", {"coins": 12}),
    }
    with sqlite3.connect(state.path) as conn:
        for key, (kind, status, payload) in legacy.items():
            conn.execute("INSERT INTO actions (key, kind, status, epoch, payload, created, updated)"
                         " VALUES (?, ?, ?, 4, ?, 0, 0)", (key, kind, status, json.dumps(payload)))
    commit = state.get("commit:0xm:W", CommitPayload)
    assert commit is not None and commit.kind == ActionKind.COMMIT and commit.status == ActionStatus.DONE
    assert commit.payload.commit_epoch == 4 and commit.payload.update is False and commit.payload.heldout_loss is None
    (created,) = state.actions(CreateModelPayload, (ActionStatus.DONE,))
    assert created.payload == CreateModelPayload(stake=10, model_id="0xm")
    (claim,) = state.actions("claim", ("waiting",))  # type: ignore[arg-type]  # plain strings still work
    assert isinstance(claim.payload, ClaimPayload) and claim.payload.as_submitter == 0
    assert [a.kind for a in state.actions(statuses=(ActionStatus.DONE,))] == ["create_model", "commit", "merge"]
    with pytest.raises(TypeError, match="not a submit"):
        state.get("claim:0xt", SubmitPayload)


def test_a_live_key_is_recorded_once_and_a_failed_one_again(tmp_path: Path) -> None:
    state = DriverState(tmp_path / "driver.db")
    assert state.record("submit:0xt", 1, SUBMIT, amount=195)
    assert state.spent_in_epoch(1) == 195
    assert not state.record("submit:0xt", 1, SUBMIT)  # intended
    state.finish("submit:0xt", ActionStatus.WAITING)
    assert not state.record("submit:0xt", 2, SUBMIT)
    state.finish("submit:0xt", ActionStatus.FAILED, error="x", fee=5)
    assert state.spent_in_epoch(1) == 5  # a failed submission's bond is not spent, its fee is
    assert state.record("submit:0xt", 2, SUBMIT)
    action = state.get("submit:0xt")
    assert action is not None and action.status == ActionStatus.INTENDED and action.attempts == 2
    assert action.error is None and action.epoch == 2
