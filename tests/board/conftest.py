"""One multi-epoch game on the real embedded network, played once for the board's tests.

Six genesis models staked 1..6 SOMA (so a 6 SOMA model of ours competes), ten targets an epoch.
A snapshot is taken right after each epoch change (epochs 0..4), before anything else happens:

- epoch 0: we create and commit a model; a staker adds stake to a genesis model; we fill one
  target and a rival fills another.
- epoch 1: we reveal (our model enters mid-epoch); we fill one target.
- epoch 2: the epoch-0 fills are claimed; we commit an update (a new embedding); we fill a target
  that lists our model, with our model; the rival fills one.
- epoch 3: the epoch-1 fills are claimed; we reveal the update (our model moves); we fill one.
- epoch 4: the epoch-2 fills are claimed, and epoch 4 is snapshot again (replacing the first).

What the chain itself said is kept beside the snapshots (`Game`), for the tests to compare with.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import base58
import numpy as np
import pytest
from soma_sdk import Keypair, SomaClient

from soma_ray.board.snapshot import Snapshot, SnapshotStore, take_snapshot
from soma_ray.chain.sim import SimChain
from soma_ray.chain.sim.genesis import genesis_owner
from soma_ray.chain.types import Target, TargetStatus
from soma_ray.protocol.commitments import blake2b256, canonical_address
from soma_ray.protocol.constants import SHANNONS_PER_SOMA
from tests.conftest import small_sim_settings

DIM = 16
EPOCHS = 5  # snapshots of epochs 0..4
TARGETS_PER_EPOCH = 10
ADDED_STAKE = SHANNONS_PER_SOMA // 2
OUR_STAKE = 6 * SHANNONS_PER_SOMA
DATA = b"board test sample " * 8


def keypair(name: str) -> Keypair:
    """Deterministic keys: the same game (digests, seeds, targets) on every run."""
    return Keypair.from_secret_key(blake2b256(b"soma-ray/tests/board/" + name.encode()))


def sealed(name: str) -> tuple[bytes, str]:
    """Deterministic "weights" and key, encrypted for real (a random key would change the digests)."""
    seed = blake2b256(b"soma-ray/tests/board/" + name.encode())
    return SomaClient.encrypt_weights(seed * 8, base58.b58encode(blake2b256(seed)).decode())


@dataclass
class Fill:
    target_id: str
    model_id: str
    submitter: str
    reward_pool: int
    epoch: int


@dataclass
class Game:
    sim: SimChain
    store: SnapshotStore
    snapshots: list[Snapshot]
    us: str  # our address
    rival: str
    genesis_owner: str
    ours: str  # our model id
    first_embedding: np.ndarray
    moved_embedding: np.ndarray
    staked_model: str  # the genesis model that got ADDED_STAKE in epoch 0
    fills: list[Fill] = field(default_factory=list)  # as the chain reported each fill
    claimed: list[str] = field(default_factory=list)
    epoch_targets: dict[int, list[Target]] = field(default_factory=dict)  # each epoch's targets at its end
    genesis_owner_balance: int = 0


async def _fill(sim: SimChain, kp: Keypair, target: Target, model_id: str) -> Fill:
    await sim.submit_data(
        kp, target.id, data=DATA, data_url="http://127.0.0.1:9200/data/board.bin", model_id=model_id,
        embedding=np.zeros(target.embedding.size, np.float32), distance_score=0.3, loss_score=[2.0],
    )
    seen = await sim.get_target(target.id)  # the chain's own record of the win
    assert seen.winning_model_id is not None and seen.submitter is not None and seen.fill_epoch is not None
    return Fill(seen.id, seen.winning_model_id, seen.submitter, seen.reward_pool, seen.fill_epoch)


async def _open(sim: SimChain) -> list[Target]:
    return await sim.all_targets(TargetStatus.OPEN)


async def play(root: Path) -> Game:
    sim = SimChain(small_sim_settings(
        root, genesis_models=6, genesis_model_stake=SHANNONS_PER_SOMA, genesis_targets=TARGETS_PER_EPOCH,
        params={"target_initial_targets_per_epoch": TARGETS_PER_EPOCH},
    ))
    us, rival, staker, claimer = (keypair(n) for n in ("us", "rival", "staker", "claimer"))
    for kp, coins in ((us, 5), (rival, 1), (staker, 1), (claimer, 1)):
        for _ in range(coins):
            await sim.faucet(kp.address())
    await sim.merge_coins(us)  # one coin to stake from
    store = SnapshotStore(root / "board")
    snapshots: list[Snapshot] = []
    fills: list[Fill] = []
    claimed: list[str] = []
    epoch_targets: dict[int, list[Target]] = {}

    async def snap() -> None:
        snapshot = await take_snapshot(sim)
        store.write(snapshot)
        snapshots.append(snapshot)

    async def claim(epoch: int) -> None:
        for fill in [f for f in fills if f.epoch == epoch]:
            await sim.claim_rewards(claimer, fill.target_id)
            claimed.append(fill.target_id)

    async def end_epoch() -> None:
        epoch_targets[(await sim.info()).epoch] = await sim.all_targets(epoch=(await sim.info()).epoch)
        await sim.advance_epoch()
        await snap()

    rng = np.random.default_rng(7)
    first = rng.standard_normal(DIM).astype(np.float32)
    moved = rng.standard_normal(DIM).astype(np.float32)
    encrypted, key = sealed("weights-1")
    url = "http://127.0.0.1:9200/models/ours.enc"

    # epoch 0
    await snap()
    ours = await sim.create_model(us, stake=OUR_STAKE)
    await sim.commit_model(us, ours, weights_url=url, encrypted_weights=encrypted, decryption_key=key, embedding=first)
    staked_model = min(m.model_id for m in await sim.active_models())
    await sim.add_stake_to_model(staker, staked_model, ADDED_STAKE)
    targets = await _open(sim)
    fills.append(await _fill(sim, us, targets[0], targets[0].model_ids[0]))
    fills.append(await _fill(sim, rival, targets[1], targets[1].model_ids[1]))
    await end_epoch()

    # epoch 1
    await sim.reveal_model(us, ours, decryption_key=key, embedding=first)
    targets = await _open(sim)
    fills.append(await _fill(sim, us, targets[0], targets[0].model_ids[0]))
    await end_epoch()

    # epoch 2
    await claim(0)
    update, update_key = sealed("weights-2")
    await sim.commit_model(us, ours, weights_url=url + ".2", encrypted_weights=update, decryption_key=update_key,
                           embedding=moved)
    targets = await _open(sim)
    listing_ours = [t for t in targets if ours in t.model_ids]
    assert listing_ours, "no epoch-2 target lists our model: the game needs one"
    fills.append(await _fill(sim, us, listing_ours[0], ours))
    other = next(t for t in targets if t.id != listing_ours[0].id)
    fills.append(await _fill(sim, rival, other, other.model_ids[0]))
    await end_epoch()

    # epoch 3
    await claim(1)
    await sim.reveal_model(us, ours, decryption_key=update_key, embedding=moved)
    targets = await _open(sim)
    fills.append(await _fill(sim, us, targets[0], targets[0].model_ids[0]))
    await end_epoch()

    # epoch 4
    await claim(2)
    snapshots.pop()  # taken again after the claims: the new one replaces it in the store too
    await snap()
    assert len(snapshots) == EPOCHS
    return Game(
        sim=sim, store=store, snapshots=snapshots, us=canonical_address(us.address()),
        rival=canonical_address(rival.address()), genesis_owner=canonical_address(genesis_owner().address()),
        ours=ours, first_embedding=first, moved_embedding=moved, staked_model=staked_model, fills=fills,
        claimed=claimed, epoch_targets=epoch_targets,
        genesis_owner_balance=await sim.balance(genesis_owner().address()),
    )


@pytest.fixture(scope="session")
def game(tmp_path_factory: pytest.TempPathFactory) -> Game:
    return asyncio.run(play(tmp_path_factory.mktemp("board")))
