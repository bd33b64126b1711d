"""Background rivals on the simulated network (SimSettings.rivals): over several epochs they
create, reveal and stake models, fill targets and claim, through the network's own transactions."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from soma_sdk import SomaClient

from soma_ray.chain.sim import SimChain
from soma_ray.chain.sim.rivals import play_rivals, rival_accounts
from soma_ray.chain.sim.settings import RivalSettings
from soma_ray.chain.types import TargetStatus
from soma_ray.protocol.commitments import canonical_address
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.protocol.rewards import split_filled
from tests.chain.kit import faucet_minted, total_supply
from tests.conftest import small_sim_settings

RIVALS = {"seed": 3, "accounts": 3, "fill_share": 0.5, "new_models_per_epoch": 1, "max_models": 3}
EPOCHS = 5


def rival_sim(root: Path, **rivals: Any) -> SimChain:
    return SimChain(small_sim_settings(root, genesis_board={"seed": 1}, rivals={**RIVALS, **rivals}))


def rows(sim: SimChain, query: str, *args: Any) -> list[sqlite3.Row]:
    with sqlite3.connect(sim.settings.db_path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(query, args).fetchall()


def expected_change(sim: SimChain, address: str, epoch: int, before: dict[str, sqlite3.Row],
                    staked_before: set[str]) -> int:
    """What one epoch change (and the rivals' turn after it) should do to a rival's balance, from
    the network's own records: claims of targets that vanished pay the split (§6), while fees,
    new stakes and the bonds of new fills leave."""
    params = ProtocolParams()
    after = {r["id"] for r in rows(sim, "SELECT id FROM targets")}
    change = 0
    for target_id, t in before.items():
        if target_id in after or t["status"] != "filled":
            continue
        split = split_filled(int(t["reward_pool"]), params)
        if t["submitter"] == address:  # rivals claim their own fills: submitter and claimer
            change += split.submitter + split.claimer + int(t["bond_amount"])
        if t["winning_model_owner"] == address:
            change += split.model_owner
    change -= sum(int(r["fee"]) for r in rows(sim, "SELECT fee FROM txs WHERE sender = ? AND epoch = ?", address, epoch))
    change -= sum(int(r["amount"]) for r in rows(sim, "SELECT id, amount FROM staked WHERE owner = ?", address)
                  if r["id"] not in staked_before)
    change -= sum(int(r["bond_amount"]) for r in rows(
        sim, "SELECT bond_amount FROM targets WHERE submitter = ? AND fill_epoch = ?", address, epoch))
    return change


async def test_rivals_fill_win_claim_and_every_shannon_is_accounted_for(tmp_path: Path) -> None:
    sim = rival_sim(tmp_path)
    db = sim.settings.db_path
    rivals = [canonical_address(kp.address()) for kp in rival_accounts(RivalSettings.model_validate(RIVALS))]
    assert [await sim.balance(a) for a in rivals] == [RivalSettings().funds] * 3  # their genesis coins
    supply = total_supply(db)
    for _ in range(EPOCHS):
        before = {r["id"]: r for r in rows(sim, "SELECT * FROM targets")}
        staked = {r["id"] for r in rows(sim, "SELECT id FROM staked")}
        balances = [await sim.balance(a) for a in rivals]
        epoch = await sim.advance_epoch()
        for address, balance in zip(rivals, balances, strict=True):
            assert await sim.balance(address) == balance + expected_change(sim, address, epoch, before, staked)
        assert total_supply(db) == supply + faucet_minted(db)  # nothing minted or burned by the rivals

    def count(kind: str) -> int:
        return len(rows(sim, "SELECT 1 FROM txs WHERE kind = ? AND ok = 1 AND sender IN (?, ?, ?)", kind, *rivals))

    assert count("SubmitData") >= EPOCHS * 4  # half of ≥ 10 open targets each epoch
    assert count("ClaimRewards") > 0 and count("AddStakeToModel") > 0
    assert count("CreateModel") == count("CommitModel") == 3  # max_models
    assert count("RevealModel") == 3
    filled = await sim.all_targets(TargetStatus.FILLED)
    assert filled and all(t.submitter in rivals and t.winning_model_id for t in filled)
    assert len({t.winning_model_id for t in filled}) > 1  # several winners
    # Their fills' data is real and served, matching the on-chain checksum.
    assert len(await sim.fetch_submission_data(filled[0].id)) == RivalSettings().data_bytes
    theirs = [m for m in await sim.active_models() if m.owner in rivals]
    assert theirs  # rival models went live, with real weights: served, checksummed, decryptable
    manifest = (await sim.model_manifests([theirs[0].model_id]))[0]
    assert manifest.decryption_key is not None
    plain = SomaClient.decrypt_weights(await sim.fetch_model(theirs[0].model_id), manifest.decryption_key)
    header = int.from_bytes(plain[:8], "little")
    assert json.loads(plain[8 : 8 + header])  # a safetensors header
    failed = rows(sim, "SELECT kind, error FROM txs WHERE ok = 0")
    assert not failed, [tuple(r) for r in failed]


async def test_a_repeated_turn_does_not_act_twice(tmp_path: Path) -> None:
    sim = rival_sim(tmp_path)
    await sim.advance_epoch()
    epoch = await sim.advance_epoch()
    txs = len(rows(sim, "SELECT 1 FROM txs"))
    report = await play_rivals(sim, RivalSettings.model_validate(RIVALS), epoch)
    assert (report.filled, report.created, report.staked, report.claimed, report.revealed) == (0, 0, 0, 0, 0)
    assert len(rows(sim, "SELECT 1 FROM txs")) == txs


async def test_rivals_are_seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same settings, same board: the same network (its chain id follows its settings, folder
    included, so each is made at the relative path sim/) plays the same rivals."""

    async def play(folder: str, **rivals: Any) -> list[tuple[Any, ...]]:
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        sim = rival_sim(Path("."), **rivals)
        for _ in range(3):
            await sim.advance_epoch()
        return [tuple(r) for r in rows(sim, "SELECT * FROM targets ORDER BY seq")]

    a, b, c = await play("a"), await play("b"), await play("c", seed=4)
    assert a == b
    assert a != c


async def test_without_rivals_nothing_happens_between_our_actions(sim: SimChain, fund: Any) -> None:
    kp = await fund(1)
    for _ in range(3):
        last = rows(sim, "SELECT MAX(seq) AS seq FROM txs")[0]["seq"]
        await sim.advance_epoch()
        assert [tuple(r) for r in rows(sim, "SELECT kind, sender FROM txs WHERE seq > ?", last)] == [
            ("ChangeEpoch", "0x0")
        ]
    assert not (sim.settings.path / "rivals").exists()
    assert "rivals" not in await sim.read_state()
    assert await sim.balance(kp.address()) == sim.settings.faucet_amount
    assert not await sim.all_targets(TargetStatus.FILLED)
