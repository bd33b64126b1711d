"""Model lifecycle on the simulated network (protocol.md §5 models, §4.3 fees, §10 constants).

Real soma-sdk crypto: weights are encrypted with `SomaClient.encrypt_weights`, and the chain
checks the revealed key and embedding against Blake2b commitments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from soma_sdk import Keypair, SomaClient

from soma_ray.chain import errors
from soma_ray.chain.sim import SimChain, SimSettings
from soma_ray.chain.types import ModelStatus
from soma_ray.protocol.assignment import select_models_weighted_knn
from soma_ray.protocol.commitments import canonical_address

SOMA = 1_000_000_000
BASE_FEE = 1000
WRITE_FEE = 300
MIN_STAKE = SOMA
DIM = 16


@dataclass(frozen=True)
class Artifact:
    encrypted: bytes
    key: str
    embedding: np.ndarray
    url: str


def artifact(tag: str = "a") -> Artifact:
    encrypted, key = SomaClient.encrypt_weights(os.urandom(512))
    embedding = np.random.default_rng().standard_normal(DIM).astype(np.float32)
    return Artifact(encrypted, key, embedding, f"http://127.0.0.1:9200/models/{tag}-{key[:8]}.enc")


async def commit(sim: SimChain, kp: Keypair, model_id: str, art: Artifact) -> Any:
    return await sim.commit_model(
        kp, model_id, weights_url=art.url, encrypted_weights=art.encrypted,
        decryption_key=art.key, embedding=art.embedding,
    )


async def reveal(sim: SimChain, kp: Keypair, model_id: str, art: Artifact, **override: Any) -> Any:
    return await sim.reveal_model(
        kp, model_id, decryption_key=override.get("key", art.key),
        embedding=override.get("embedding", art.embedding),
    )


async def active_model(sim: SimChain, kp: Keypair, *, stake: int | None = None) -> tuple[str, Artifact]:
    """create + commit now, reveal in the next epoch: an Active model."""
    model_id = await sim.create_model(kp, stake=stake)
    art = artifact()
    await commit(sim, kp, model_id, art)
    await sim.advance_epoch()
    await reveal(sim, kp, model_id, art)
    return model_id, art


async def charged(sim: SimChain, kp: Keypair, exc: type[Exception], call: Any) -> None:
    """`call()` fails with exactly `exc` and costs exactly the base fee."""
    before = await sim.balance(kp.address())
    with pytest.raises(exc) as raised:
        await call()
    assert type(raised.value) is exc
    assert await sim.balance(kp.address()) == before - BASE_FEE


# -- CreateModel ------------------------------------------------------------------------------------


async def test_create_model_takes_stake_from_gas_coin(sim: SimChain, fund: Any) -> None:
    kp = await fund(1)
    epoch = (await sim.info()).epoch
    model_id = await sim.create_model(kp, commission_rate=250)
    value_fee = MIN_STAKE * (10 // 2) // 10_000  # bps_mul(stake, value_fee_bps / 2)
    fee = BASE_FEE + 3 * WRITE_FEE + value_fee  # gas, StakedSoma, SystemState
    assert await sim.balance(kp.address()) == 2 * SOMA - MIN_STAKE - fee
    info = await sim.get_model(model_id)
    assert info.status is ModelStatus.CREATED
    assert info.owner == canonical_address(kp.address())
    assert info.stake == MIN_STAKE
    assert info.create_epoch == epoch
    assert info.commit_epoch is None and info.manifest is None
    assert model_id not in {m.model_id for m in await sim.active_models()}


async def test_create_model_check_order(sim: SimChain, fund: Any) -> None:
    kp = await fund(1)
    # each call also breaks every later check: architecture, min stake, commission, balance
    await charged(sim, kp, errors.ModelArchitectureVersionMismatch,
                  lambda: sim.create_model(kp, stake=1, commission_rate=10_001, architecture_version=2))
    await charged(sim, kp, errors.ModelMinStakeNotMet,
                  lambda: sim.create_model(kp, stake=MIN_STAKE - 1, commission_rate=10_001))
    await charged(sim, kp, errors.ModelCommissionRateTooHigh,
                  lambda: sim.create_model(kp, stake=5 * SOMA, commission_rate=10_001))
    await charged(sim, kp, errors.InsufficientCoinBalance, lambda: sim.create_model(kp, stake=2 * SOMA))
    # 10,000 bps is allowed, and the architecture version the network runs is accepted
    model_id = await sim.create_model(kp, commission_rate=10_000, architecture_version=1)
    assert (await sim.get_model(model_id)).status is ModelStatus.CREATED


async def test_create_model_can_spend_the_gas_coin_to_zero(sim: SimChain, fund: Any) -> None:
    """Needs gas >= stake + fees (k = 3 writes); a gas coin left at exactly 0 is deleted."""
    rich = await fund(2)
    stake = MIN_STAKE
    needed = stake + BASE_FEE + 3 * WRITE_FEE + stake * 5 // 10_000
    short, exact = Keypair.generate(), Keypair.generate()
    await sim.pay_coins(rich, [short.address()], [needed - 1])
    await sim.pay_coins(rich, [exact.address()], [needed])
    await charged(sim, short, errors.InsufficientCoinBalance, lambda: sim.create_model(short, stake=stake))
    model_id = await sim.create_model(exact, stake=stake)
    assert (await sim.get_model(model_id)).stake == stake
    assert await sim.coins(exact.address()) == []


# -- commit / reveal ------------------------------------------------------------------------------


async def test_commit_then_reveal_in_the_next_epoch(sim: SimChain, fund: Any) -> None:
    kp, stranger = await fund(1), await fund(1)
    model_id = await sim.create_model(kp)
    art = artifact()
    balance = await sim.balance(kp.address())
    tx = await commit(sim, kp, model_id, art)
    assert tx.fee == BASE_FEE + 2 * WRITE_FEE  # gas + SystemState
    assert await sim.balance(kp.address()) == balance - tx.fee

    pending = await sim.get_model(model_id)
    assert pending.status is ModelStatus.PENDING
    assert pending.commit_epoch == 0
    assert pending.manifest is not None
    assert pending.manifest.url == art.url
    assert pending.manifest.checksum == SomaClient.commitment(art.encrypted)
    assert pending.manifest.size == len(art.encrypted)
    assert pending.manifest.decryption_key is None  # no key until the reveal
    [manifest] = await sim.model_manifests([model_id])
    assert manifest.decryption_key is None
    assert model_id not in {m.model_id for m in await sim.active_models()}

    # same epoch: too early
    await charged(sim, kp, errors.ModelRevealEpochMismatch, lambda: reveal(sim, kp, model_id, art))
    await sim.advance_epoch()
    # owner is checked before the epoch and the commitments
    await charged(sim, stranger, errors.NotModelOwner, lambda: reveal(sim, stranger, model_id, art))
    # key before embedding: both wrong -> the key error
    other = artifact("other")
    await charged(sim, kp, errors.ModelDecryptionKeyCommitmentMismatch,
                  lambda: reveal(sim, kp, model_id, art, key=other.key, embedding=other.embedding))
    await charged(sim, kp, errors.ModelEmbeddingCommitmentMismatch,
                  lambda: reveal(sim, kp, model_id, art, embedding=art.embedding + np.float32(1e-3)))
    assert (await sim.get_model(model_id)).status is ModelStatus.PENDING

    tx = await reveal(sim, kp, model_id, art)
    assert tx.fee == BASE_FEE + 2 * WRITE_FEE
    active = await sim.get_model(model_id)
    assert active.status is ModelStatus.ACTIVE
    [manifest] = await sim.model_manifests([model_id])
    assert manifest.decryption_key == art.key
    assert SomaClient.decrypt_weights(art.encrypted, manifest.decryption_key)  # the real key opens it
    [listed] = [m for m in await sim.active_models() if m.model_id == model_id]
    np.testing.assert_array_equal(listed.embedding, art.embedding)
    assert listed.stake == MIN_STAKE and listed.owner == canonical_address(kp.address())


async def test_reveal_two_epochs_late_is_refused(sim: SimChain, fund: Any) -> None:
    """Missing commit_epoch+1 is final: at the boundary the model is slashed to Inactive, so the
    chain answers ModelInvalidState (there is no Pending model left to mismatch epochs on)."""
    kp = await fund(1)
    model_id = await sim.create_model(kp)
    art = artifact()
    await commit(sim, kp, model_id, art)
    await sim.advance_epoch()
    await sim.advance_epoch()
    await charged(sim, kp, errors.ModelInvalidState, lambda: reveal(sim, kp, model_id, art))
    assert (await sim.get_model(model_id)).status is ModelStatus.INACTIVE


async def test_commit_errors(sim: SimChain, fund: Any) -> None:
    kp, stranger = await fund(1), await fund(1)
    model_id = await sim.create_model(kp)
    art = artifact()
    await charged(sim, kp, errors.ModelNotFound, lambda: commit(sim, kp, "0x" + "77" * 32, art))
    await charged(sim, stranger, errors.NotModelOwner, lambda: commit(sim, stranger, model_id, art))
    # reveal on a Created model: invalid state (before the owner check)
    await charged(sim, stranger, errors.ModelInvalidState, lambda: reveal(sim, stranger, model_id, art))
    await commit(sim, kp, model_id, art)
    # a Pending model cannot be committed again, not even by its owner (state before owner)
    await charged(sim, kp, errors.ModelInvalidState, lambda: commit(sim, kp, model_id, artifact()))
    await charged(sim, stranger, errors.ModelInvalidState, lambda: commit(sim, stranger, model_id, art))
    assert (await sim.get_model(model_id)).manifest.url == art.url  # type: ignore[union-attr]


async def test_reveal_without_pending_update(sim: SimChain, fund: Any) -> None:
    kp, stranger = await fund(2), await fund(1)
    model_id, art = await active_model(sim, kp)
    await charged(sim, stranger, errors.NotModelOwner, lambda: reveal(sim, stranger, model_id, art))
    await charged(sim, kp, errors.ModelNoPendingUpdate, lambda: reveal(sim, kp, model_id, art))


async def test_update_commit_reveal_replaces_manifest_in_place(sim: SimChain, fund: Any) -> None:
    kp = await fund(2)
    model_id, old = await active_model(sim, kp)
    epoch = (await sim.info()).epoch
    first, second = artifact("first"), artifact("second")
    await commit(sim, kp, model_id, first)
    await commit(sim, kp, model_id, second)  # the latest commit of the epoch wins
    info = await sim.get_model(model_id)
    assert info.status is ModelStatus.ACTIVE
    assert info.has_pending_update and info.pending_commit_epoch == epoch
    # until the reveal everything still shows the current version
    [manifest] = await sim.model_manifests([model_id])
    assert (manifest.url, manifest.decryption_key) == (old.url, old.key)
    [listed] = [m for m in await sim.active_models() if m.model_id == model_id]
    assert listed.has_pending_update
    np.testing.assert_array_equal(listed.embedding, old.embedding)

    await charged(sim, kp, errors.ModelRevealEpochMismatch, lambda: reveal(sim, kp, model_id, second))
    await sim.advance_epoch()
    await charged(sim, kp, errors.ModelDecryptionKeyCommitmentMismatch, lambda: reveal(sim, kp, model_id, first))
    await reveal(sim, kp, model_id, second)

    info = await sim.get_model(model_id)
    assert info.status is ModelStatus.ACTIVE and not info.has_pending_update
    assert info.model_id == model_id
    [manifest] = await sim.model_manifests([model_id])
    assert manifest.url == second.url
    assert manifest.checksum == SomaClient.commitment(second.encrypted)
    assert manifest.size == len(second.encrypted)
    assert manifest.decryption_key == second.key
    [listed] = [m for m in await sim.active_models() if m.model_id == model_id]
    np.testing.assert_array_equal(listed.embedding, second.embedding)
    assert not listed.has_pending_update
    await charged(sim, kp, errors.ModelNoPendingUpdate, lambda: reveal(sim, kp, model_id, second))


# -- epoch-boundary rules ------------------------------------------------------------------------------


async def test_created_model_not_committed_is_slashed_every_epoch(sim: SimChain, fund: Any) -> None:
    kp = await fund(1)
    model_id = await sim.create_model(kp, stake=SOMA)
    await sim.advance_epoch()  # epoch 1 = create_epoch + 1: still allowed to commit
    assert (await sim.get_model(model_id)).stake == SOMA
    await sim.advance_epoch()  # epoch 2: slashed 50%, stays Created
    info = await sim.get_model(model_id)
    assert (info.status, info.stake) == (ModelStatus.CREATED, SOMA // 2)
    await sim.advance_epoch()  # and again
    info = await sim.get_model(model_id)
    assert (info.status, info.stake) == (ModelStatus.CREATED, SOMA // 4)


async def test_commit_in_create_epoch_plus_one_escapes_the_slash(sim: SimChain, fund: Any) -> None:
    kp = await fund(1)
    model_id = await sim.create_model(kp)
    await sim.advance_epoch()
    art = artifact()
    await commit(sim, kp, model_id, art)
    await sim.advance_epoch()
    info = await sim.get_model(model_id)
    assert (info.status, info.stake) == (ModelStatus.PENDING, MIN_STAKE)
    await reveal(sim, kp, model_id, art)
    assert (await sim.get_model(model_id)).status is ModelStatus.ACTIVE


async def test_pending_model_not_revealed_is_slashed_and_inactive(sim: SimChain, fund: Any) -> None:
    kp = await fund(1)
    model_id = await sim.create_model(kp, stake=SOMA // 2 * 3)
    await commit(sim, kp, model_id, artifact())
    await sim.advance_epoch()  # the reveal epoch passes unused
    assert (await sim.get_model(model_id)).status is ModelStatus.PENDING
    await sim.advance_epoch()
    info = await sim.get_model(model_id)
    assert info.status is ModelStatus.INACTIVE
    assert info.stake == SOMA // 2 * 3 // 2
    # the chain fills the never-revealed key with zeros; the manifest stays listed
    [manifest] = await sim.model_manifests([model_id])
    assert manifest.decryption_key == "1" * 32
    await sim.advance_epoch()  # inactive models are not slashed again
    assert (await sim.get_model(model_id)).stake == SOMA // 2 * 3 // 2
    assert model_id not in {m.model_id for m in await sim.active_models()}


async def test_stale_update_is_cancelled_without_slash(sim: SimChain, fund: Any) -> None:
    kp = await fund(2)
    model_id, old = await active_model(sim, kp)
    late = artifact("late")
    await commit(sim, kp, model_id, late)
    await sim.advance_epoch()
    assert (await sim.get_model(model_id)).has_pending_update  # reveal epoch: still pending
    await sim.advance_epoch()
    info = await sim.get_model(model_id)
    assert (info.status, info.stake, info.has_pending_update) == (ModelStatus.ACTIVE, MIN_STAKE, False)
    [manifest] = await sim.model_manifests([model_id])
    assert manifest.decryption_key == old.key
    # revealing two epochs late finds no update left to reveal
    await charged(sim, kp, errors.ModelNoPendingUpdate, lambda: reveal(sim, kp, model_id, late))


# -- stake ---------------------------------------------------------------------------------------------


async def test_add_stake_to_pre_active_model_counts_at_once(sim: SimChain, fund: Any) -> None:
    owner, backer = await fund(1), await fund(1)
    model_id = await sim.create_model(owner)
    balance = await sim.balance(backer.address())
    tx = await sim.add_stake_to_model(backer, model_id, SOMA // 2)
    # gas, StakedSoma, SystemState + bps_mul(amount, value_fee_bps / 2)
    assert tx.fee == BASE_FEE + 3 * WRITE_FEE + (SOMA // 2) * 5 // 10_000
    assert await sim.balance(backer.address()) == balance - SOMA // 2 - tx.fee
    assert (await sim.get_model(model_id)).stake == MIN_STAKE + SOMA // 2
    await commit(sim, owner, model_id, artifact())  # Pending pools also count at once
    await sim.add_stake_to_model(backer, model_id, SOMA // 4)
    assert (await sim.get_model(model_id)).stake == MIN_STAKE + SOMA // 2 + SOMA // 4


async def test_add_stake_to_active_model_counts_from_next_epoch(sim: SimChain, fund: Any) -> None:
    owner, backer = await fund(2), await fund(1)
    model_id, _ = await active_model(sim, owner)
    await sim.add_stake_to_model(backer, model_id, SOMA // 2)
    assert (await sim.get_model(model_id)).stake == MIN_STAKE
    [listed] = [m for m in await sim.active_models() if m.model_id == model_id]
    assert listed.stake == MIN_STAKE
    await sim.advance_epoch()
    assert (await sim.get_model(model_id)).stake == MIN_STAKE + SOMA // 2
    [listed] = [m for m in await sim.active_models() if m.model_id == model_id]
    assert listed.stake == MIN_STAKE + SOMA // 2


async def test_add_stake_errors(sim: SimChain, fund: Any) -> None:
    owner, backer = await fund(2), await fund(1)
    model_id, _ = await active_model(sim, owner)
    await charged(sim, backer, errors.InsufficientCoinBalance,
                  lambda: sim.add_stake_to_model(backer, "0x" + "99" * 32, 3 * SOMA))  # balance first
    await charged(sim, backer, errors.InvalidArguments, lambda: sim.add_stake_to_model(backer, model_id, 0))
    await charged(sim, backer, errors.ModelNotFound,
                  lambda: sim.add_stake_to_model(backer, "0x" + "99" * 32, SOMA // 10))
    await sim.deactivate_model(owner, model_id)
    await charged(sim, backer, errors.ModelAlreadyInactive,
                  lambda: sim.add_stake_to_model(backer, model_id, SOMA // 10))


# -- deactivate ------------------------------------------------------------------------------------------


async def test_deactivate(sim: SimChain, fund: Any) -> None:
    owner, stranger = await fund(2), await fund(1)
    created = await sim.create_model(owner)
    # not active is checked before ownership
    await charged(sim, stranger, errors.ModelNotActive, lambda: sim.deactivate_model(stranger, created))
    await charged(sim, stranger, errors.ModelNotFound, lambda: sim.deactivate_model(stranger, "0x" + "55" * 32))
    model_id, art = await active_model(sim, owner)
    await charged(sim, stranger, errors.NotModelOwner, lambda: sim.deactivate_model(stranger, model_id))
    tx = await sim.deactivate_model(owner, model_id)
    assert tx.fee == BASE_FEE + 2 * WRITE_FEE
    info = await sim.get_model(model_id)
    assert (info.status, info.stake) == (ModelStatus.INACTIVE, MIN_STAKE)  # no slash
    assert model_id not in {m.model_id for m in await sim.active_models()}
    [manifest] = await sim.model_manifests([model_id])  # inactive models keep their manifest
    assert manifest.decryption_key == art.key
    await charged(sim, owner, errors.ModelNotActive, lambda: sim.deactivate_model(owner, model_id))


# -- assignment -------------------------------------------------------------------------------------------


async def test_revealed_model_is_assigned_targets(tmp_path: Path) -> None:
    """One genesis model + ours: every new target must list both (k = 3 > 2 active models)."""
    sim = SimChain(SimSettings.model_validate({
        "path": tmp_path / "one", "genesis_models": 1, "genesis_targets": 3,
        "params": {"target_initial_targets_per_epoch": 5},
    }))
    kp = Keypair.generate()
    for _ in range(2):
        await sim.faucet(kp.address())
    model_id, _ = await active_model(sim, kp)  # revealed in epoch 1
    # the epoch-1 targets were made before the reveal...
    epoch_1 = (await sim.list_targets("open")).targets
    for target in epoch_1:
        assert model_id not in target.model_ids
    # ...but a spawn-on-fill replacement made after it already lists the model
    tx = await sim.submit_data(
        kp, epoch_1[0].id, data=b"spawn", data_url="http://x", model_id=epoch_1[0].model_ids[0],
        embedding=np.zeros(DIM, np.float32), distance_score=0.1, loss_score=[1.0],
    )
    assert model_id in (await sim.get_target(tx.created[0])).model_ids

    await sim.advance_epoch()
    models = await sim.active_models()
    assert model_id in {m.model_id for m in models}
    targets = (await sim.list_targets("open")).targets
    assert len(targets) == 5  # the epoch-1 replacement has expired
    for target in targets:
        assert model_id in target.model_ids
        assert target.model_ids == select_models_weighted_knn(
            target.embedding, [m.model_id for m in models], np.stack([m.embedding for m in models]),
            [m.stake for m in models], 3,
        )
    assert len(await sim.model_manifests(targets[0].model_ids)) == 2


async def test_stake_steers_assignment(tmp_path: Path) -> None:
    """Genesis models staked with a few shannons against our 1 SOMA: ours (sqrt share ~0.9998)
    is listed first on every new target, wherever its embedding points."""
    sim = SimChain(SimSettings.model_validate({
        "path": tmp_path / "stake", "genesis_models": 4, "genesis_targets": 0,
        "genesis_model_stake": 1, "params": {"target_initial_targets_per_epoch": 8},
    }))
    kp = Keypair.generate()
    for _ in range(2):
        await sim.faucet(kp.address())
    model_id, _ = await active_model(sim, kp)
    await sim.advance_epoch()
    targets = (await sim.list_targets("open")).targets
    assert len(targets) == 8
    models = await sim.active_models()
    assert sorted(m.stake for m in models) == [1, 2, 3, 4, MIN_STAKE]
    for target in targets:
        assert target.model_ids[0] == model_id
        assert target.model_ids == select_models_weighted_knn(
            target.embedding, [m.model_id for m in models], np.stack([m.embedding for m in models]),
            [m.stake for m in models], 3,
        )


# -- manifests -----------------------------------------------------------------------------------------


async def test_model_manifests_refuses_short_answers(sim: SimChain, fund: Any) -> None:
    kp = await fund(1)
    target = (await sim.list_targets("open")).targets[0]
    manifests = await sim.model_manifests(target.model_ids)
    assert len(manifests) == len(target.model_ids)
    assert all(m.decryption_key for m in manifests)
    with pytest.raises(errors.ManifestCountMismatch):
        await sim.model_manifests([*target.model_ids, "0x" + "12" * 32])
    created = await sim.create_model(kp)
    with pytest.raises(errors.ManifestCountMismatch):  # Created models have no manifest
        await sim.model_manifests([target.model_ids[0], created])
    assert await sim.model_manifests([]) == []
