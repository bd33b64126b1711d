"""SubmitData on the simulated network (protocol.md §4.2–§4.3 SubmitData).

Each failure is provoked while every *later* check would fail too, so the test pins the chain's
check order; each must cost exactly the base fee and change nothing else. The race runs two
real OS processes against one SQLite file.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import arrgen
import base58
import numpy as np
import pytest
from soma_sdk import Keypair

from soma_ray.chain import errors
from soma_ray.chain.sim import SimChain, SimSettings
from soma_ray.chain.sim.genesis import genesis_owner
from soma_ray.chain.types import Target
from soma_ray.protocol.assignment import select_models_weighted_knn
from soma_ray.protocol.commitments import canonical_address, derive_id, target_seed
from soma_ray.storage import BlobHTTPServer
from tests.conftest import small_sim_settings

BASE_FEE = 1000
WRITE_FEE = 300
BOND_PER_BYTE = 65
MAX_SIZE = 1_048_576
DATA_URL = "http://127.0.0.1:9200/data/sample.bin"


async def submit(
    sim: SimChain,
    signer: Keypair,
    target: Target,
    *,
    model_id: str | None = None,
    dim: int | None = None,
    distance: float = 0.5,
    data: bytes = b"x" * 100,
) -> Any:
    return await sim.submit_data(
        signer,
        target.id,
        data=data,
        data_url=DATA_URL,
        model_id=model_id or target.model_ids[0],
        embedding=np.full(target.embedding.size if dim is None else dim, 0.25, dtype=np.float32),
        distance_score=distance,
        loss_score=[3.5],
    )


@dataclass
class Snapshot:
    balance: int
    coins: dict[str, int]
    target: tuple[Any, ...]
    hits: int
    generated: int
    pool: int
    n_targets: int


async def snapshot(sim: SimChain, who: Keypair, target_id: str) -> Snapshot:
    t = await sim.get_target(target_id)
    info = await sim.info()
    coins = await sim.coins(who.address())
    return Snapshot(
        balance=sum(c.balance for c in coins),
        coins={c.id: c.balance for c in coins},
        target=(t.status, t.submitter, t.winning_model_id, t.bond_amount, t.data_url, t.fill_epoch,
                t.reward_pool, tuple(t.model_ids)),
        hits=info.hits_this_epoch,
        generated=info.targets_generated_this_epoch,
        pool=info.emission_pool_balance,
        n_targets=len(await sim.all_targets()),
    )


def assert_only_base_fee(before: Snapshot, after: Snapshot) -> None:
    assert after.balance == before.balance - BASE_FEE
    assert set(after.coins) == set(before.coins)  # nothing created or deleted
    assert after.target == before.target
    assert (after.hits, after.generated, after.pool, after.n_targets) == (
        before.hits, before.generated, before.pool, before.n_targets,
    )


@dataclass
class World:
    sim: SimChain
    rich: Keypair
    poor: Keypair  # one coin of 20,000 shannons: pays the base fee, not a 65,000 bond
    open_target: Target
    outsider: str  # an active model not in open_target.model_ids


@pytest.fixture
async def world(sim: SimChain, fund: Any) -> World:
    rich = await fund(1)
    poor = Keypair.generate()
    await sim.pay_coins(rich, [poor.address()], [20_000])
    target = (await sim.list_targets("open")).targets[0]
    active = [m.model_id for m in await sim.active_models()]
    outsider = next(m for m in active if m not in target.model_ids)
    return World(sim, rich, poor, target, outsider)


BAD = {"dim": 15, "distance": 1.9, "data": b"x" * (MAX_SIZE + 1)}


async def _failing_case(
    w: World, case: str
) -> tuple[Keypair, Target, dict[str, Any], type[errors.TransactionFailed]]:
    """(signer, target, submit kwargs, expected error): every check after the expected one fails too."""
    sim, t = w.sim, w.open_target
    if case == "TargetNotOpen":
        await submit(sim, w.rich, t)
        return w.poor, t, {"model_id": w.outsider, **BAD}, errors.TargetNotOpen
    if case == "TargetExpired":
        await sim.advance_epoch()
        return w.poor, t, {"model_id": w.outsider, **BAD}, errors.TargetExpired
    if case == "ModelNotInTarget":
        return w.poor, t, {"model_id": w.outsider, **BAD}, errors.ModelNotInTarget
    if case == "EmbeddingDimensionMismatch":
        return w.poor, t, dict(BAD), errors.EmbeddingDimensionMismatch
    if case == "DistanceExceedsThreshold":
        return w.poor, t, {"distance": 1.9, "data": BAD["data"]}, errors.DistanceExceedsThreshold
    if case == "DataExceedsMaxSize":
        return w.poor, t, {"data": BAD["data"]}, errors.DataExceedsMaxSize
    if case == "InsufficientBond":
        # 1000 bytes -> bond 65,000 > the 19,000 left after the base fee; the model is also
        # inactive, which is checked only after the bond
        await _deactivate(sim, t.model_ids[0])
        return w.poor, t, {"data": b"y" * 1000}, errors.InsufficientBond
    if case == "ModelNotActive":
        await _deactivate(sim, t.model_ids[0])
        return w.rich, t, {}, errors.ModelNotActive
    raise AssertionError(case)


async def _deactivate(sim: SimChain, model_id: str) -> None:
    owner = genesis_owner()
    if not await sim.coins(owner.address()):
        await sim.faucet(owner.address())
    await sim.deactivate_model(owner, model_id)


ORDER = [
    "TargetNotOpen",
    "TargetExpired",
    "ModelNotInTarget",
    "EmbeddingDimensionMismatch",
    "DistanceExceedsThreshold",
    "DataExceedsMaxSize",
    "InsufficientBond",
    "ModelNotActive",
]


@pytest.mark.parametrize("case", ORDER)
async def test_failure_in_chain_order_costs_only_the_base_fee(world: World, case: str) -> None:
    signer, target, kwargs, expected = await _failing_case(world, case)
    before = await snapshot(world.sim, signer, target.id)
    with pytest.raises(expected) as raised:
        await submit(world.sim, signer, target, **kwargs)
    assert type(raised.value) is expected
    assert raised.value.code == case
    assert raised.value.digest  # an executed, recorded transaction
    assert_only_base_fee(before, await snapshot(world.sim, signer, target.id))


async def test_failures_keep_target_open_and_fillable(world: World) -> None:
    """After a run of failures the same target can still be filled: nothing was taken."""
    for kwargs in ({"model_id": world.outsider}, {"dim": 3}, {"distance": 1.5}):
        with pytest.raises(errors.TransactionFailed):
            await submit(world.sim, world.rich, world.open_target, **kwargs)
    await submit(world.sim, world.rich, world.open_target)
    assert (await world.sim.get_target(world.open_target.id)).status == "filled"


async def test_unknown_target_is_not_executed_or_charged(world: World) -> None:
    before = await world.sim.balance(world.rich.address())
    ghost = Target(**{**world.open_target.__dict__, "id": "0x" + "ab" * 32})
    with pytest.raises(errors.ObjectNotFound):
        await submit(world.sim, world.rich, ghost)
    assert await world.sim.balance(world.rich.address()) == before


async def test_bond_on_the_gas_coin_counts_after_the_base_fee(sim: SimChain, fund: Any) -> None:
    """prepare_gas takes the base fee first: a single coin of bond + 500 cannot post the bond."""
    rich = await fund(1)
    payer = Keypair.generate()
    bond = 1000 * BOND_PER_BYTE
    await sim.pay_coins(rich, [payer.address()], [bond + 500])
    target = (await sim.list_targets("open")).targets[0]
    with pytest.raises(errors.InsufficientBond) as raised:
        await submit(sim, payer, target, data=b"z" * 1000)
    assert f"required: {bond}" in str(raised.value.detail)
    assert f"provided: {bond - 500}" in str(raised.value.detail)
    assert await sim.balance(payer.address()) == bond + 500 - BASE_FEE


# -- distance boundary -------------------------------------------------------------------------


async def test_distance_equal_to_threshold_passes(world: World) -> None:
    t = world.open_target
    threshold = np.float32(t.distance_threshold)
    assert float(threshold) == t.distance_threshold  # an f32 value, as the chain stores it
    await submit(world.sim, world.rich, t, distance=float(threshold))
    assert (await world.sim.get_target(t.id)).status == "filled"


async def test_distance_one_ulp_above_threshold_fails(world: World) -> None:
    t = world.open_target
    above = np.nextafter(np.float32(t.distance_threshold), np.float32(10))
    with pytest.raises(errors.DistanceExceedsThreshold):
        await submit(world.sim, world.rich, t, distance=float(above))


async def test_nan_distance_passes_like_on_chain(world: World) -> None:
    await submit(world.sim, world.rich, world.open_target, distance=math.nan)
    assert (await world.sim.get_target(world.open_target.id)).status == "filled"


async def test_data_of_exactly_max_size_is_accepted(world: World) -> None:
    before = await world.sim.balance(world.rich.address())
    tx = await submit(world.sim, world.rich, world.open_target, data=b"m" * MAX_SIZE)
    target = await world.sim.get_target(world.open_target.id)
    assert target.bond_amount == MAX_SIZE * BOND_PER_BYTE == 68_157_440
    assert await world.sim.balance(world.rich.address()) == before - 68_157_440 - tx.fee


# -- success ----------------------------------------------------------------------------------------


async def test_success_fills_target_takes_bond_and_spawns_replacement(sim: SimChain, fund: Any) -> None:
    kp = await fund(1)  # one coin: the bond comes from the gas coin
    info0 = await sim.info()
    target = (await sim.list_targets("open")).targets[0]
    model_id = target.model_ids[1]
    data = b"hello soma " * 37
    before_ids = {t.id for t in await sim.all_targets()}
    balance0 = await sim.balance(kp.address())

    tx = await submit(sim, kp, target, model_id=model_id, data=data)

    assert tx.ok
    bond = BOND_PER_BYTE * len(data)
    # written: gas coin, target, SystemState, the replacement target
    assert tx.fee == BASE_FEE + WRITE_FEE * 4 == BASE_FEE + WRITE_FEE * (len(tx.created) + len(tx.mutated))
    assert await sim.balance(kp.address()) == balance0 - bond - tx.fee
    assert len(await sim.coins(kp.address())) == 1

    filled = await sim.get_target(target.id)
    assert filled.status == "filled"
    assert filled.fill_epoch == info0.epoch
    assert filled.submitter == canonical_address(kp.address())
    assert filled.winning_model_id == model_id
    assert filled.bond_amount == bond
    assert filled.data_url == DATA_URL

    info1 = await sim.info()
    assert info1.hits_this_epoch == info0.hits_this_epoch + 1
    assert info1.targets_generated_this_epoch == info0.targets_generated_this_epoch + 1
    assert info1.emission_pool_balance == info0.emission_pool_balance - info0.reward_per_target

    # the replacement: seed from creation number 1, id from creation number 2 (§5 spawn-on-fill)
    digest = base58.b58decode(tx.digest)
    new_ids = {t.id for t in await sim.all_targets()} - before_ids
    assert new_ids == {derive_id(digest, 2)} == set(tx.created)
    spawned = await sim.get_target(derive_id(digest, 2))
    seed = target_seed(digest, 1)
    expected_embedding = arrgen.normal_array(seed, [info0.embedding_dim], 0.0, 1.0)
    np.testing.assert_array_equal(spawned.embedding, expected_embedding)
    assert spawned.embedding.dtype == np.float32
    models = await sim.active_models()
    expected_models = select_models_weighted_knn(
        expected_embedding,
        [m.model_id for m in models],
        np.stack([m.embedding for m in models]),
        [m.stake for m in models],
        3,
    )
    assert spawned.model_ids == expected_models
    assert spawned.status == "open"
    assert spawned.generation_epoch == info0.epoch
    assert spawned.reward_pool == info0.reward_per_target
    assert spawned.distance_threshold == info0.distance_threshold
    assert spawned.submitter is None and spawned.bond_amount == 0


async def test_success_with_a_separate_bond_coin_writes_it_too(sim: SimChain, fund: Any) -> None:
    kp = await fund(2)
    target = (await sim.list_targets("open")).targets[0]
    data = b"q" * 500
    balance0 = await sim.balance(kp.address())
    tx = await submit(sim, kp, target, data=data)
    # gas coin, bond coin (partly consumed), target, SystemState, replacement
    assert tx.fee == BASE_FEE + WRITE_FEE * 5
    coins = sorted(c.balance for c in await sim.coins(kp.address()))
    assert coins == sorted([2_000_000_000 - tx.fee, 2_000_000_000 - 65 * 500])
    assert await sim.balance(kp.address()) == balance0 - 65 * 500 - tx.fee


async def test_a_bond_coin_spent_exactly_is_deleted(sim: SimChain, fund: Any) -> None:
    rich = await fund(2)
    kp = await fund(1)
    data = b"e" * 300
    bond = 65 * len(data)
    await sim.pay_coins(rich, [kp.address()], [bond])
    bond_coin = next(c.id for c in await sim.coins(kp.address()) if c.balance == bond)
    target = (await sim.list_targets("open")).targets[0]
    tx = await submit(sim, kp, target, data=data)
    assert tx.deleted == [bond_coin]
    assert tx.fee == BASE_FEE + WRITE_FEE * 4  # gas, target, SystemState, replacement; deleted not counted
    assert [c.balance for c in await sim.coins(kp.address())] == [2_000_000_000 - tx.fee]


async def test_no_replacement_once_the_epoch_budget_is_spent(tmp_path: Path, fund: Any) -> None:
    """20 genesis targets at 1096/20 SOMA use the whole 1096-SOMA budget: no spawn-on-fill."""
    sim = SimChain(small_sim_settings(tmp_path / "full", genesis_targets=20))
    kp = Keypair.generate()
    await sim.faucet(kp.address())
    info0 = await sim.info()
    assert info0.targets_generated_this_epoch * info0.reward_per_target == 1_096_000_000_000
    target = (await sim.list_targets("open")).targets[0]
    n0 = len(await sim.all_targets())
    tx = await submit(sim, kp, target)
    assert tx.created == []
    assert tx.fee == BASE_FEE + WRITE_FEE * 3  # gas, target, SystemState
    assert len(await sim.all_targets()) == n0
    info1 = await sim.info()
    assert info1.hits_this_epoch == 1
    assert info1.emission_pool_balance == info0.emission_pool_balance


async def test_spawned_target_can_itself_be_filled(world: World) -> None:
    tx = await submit(world.sim, world.rich, world.open_target)
    spawned = await world.sim.get_target(tx.created[0])
    tx2 = await submit(world.sim, world.rich, spawned)
    assert (await world.sim.get_target(spawned.id)).submitter == canonical_address(world.rich.address())
    assert tx2.created == [derive_id(base58.b58decode(tx2.digest), 2)]


async def test_submitted_data_checksum_is_recorded(world: World, tmp_path: Path) -> None:
    """The chain keeps Blake2b(data): fetching returns the bytes only while they still match."""
    sim = world.sim
    data = b"recorded bytes"
    served = tmp_path / "served"
    served.mkdir()
    (served / "sample.bin").write_bytes(data)
    with BlobHTTPServer(served) as server:
        await sim.submit_data(
            world.rich, world.open_target.id, data=data, data_url=f"{server.url}/sample.bin",
            model_id=world.open_target.model_ids[0], embedding=np.zeros(16, dtype=np.float32),
            distance_score=0.1, loss_score=[1.0],
        )
        assert await sim.fetch_submission_data(world.open_target.id) == data
        (served / "sample.bin").write_bytes(b"swapped bytes!")
        with pytest.raises(errors.ChainError, match="checksum"):
            await sim.fetch_submission_data(world.open_target.id)


# -- the race ------------------------------------------------------------------------------------


def _race_worker(sim_settings_json: str, secret_hex: str, target_id: str, model_id: str, dim: int,
                 barrier: Any, results: Any) -> None:
    async def go() -> tuple[str, str]:
        sim = SimChain(SimSettings.model_validate_json(sim_settings_json))
        kp = Keypair.from_secret_key(secret_hex)
        barrier.wait(timeout=60)
        try:
            tx = await sim.submit_data(
                kp, target_id, data=b"race" * 10, data_url=DATA_URL, model_id=model_id,
                embedding=np.zeros(dim, dtype=np.float32), distance_score=0.1, loss_score=[1.0],
            )
            return "ok", tx.digest
        except errors.TransactionFailed as exc:
            return "failed", exc.code

    try:
        status, detail = asyncio.run(go())
    except BaseException as exc:  # noqa: BLE001 - report, never hang the parent
        status, detail = "crash", repr(exc)
    results.put((Keypair.from_secret_key(secret_hex).address(), status, detail))


async def test_race_two_processes_one_target(tmp_path: Path) -> None:
    cfg = small_sim_settings(tmp_path)
    sim = SimChain(cfg)
    a, b = Keypair.generate(), Keypair.generate()
    for kp in (a, b):
        await sim.faucet(kp.address())
    target = (await sim.list_targets("open")).targets[0]

    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_race_worker,
            args=(cfg.model_dump_json(), kp.to_secret_key(), target.id, target.model_ids[0],
                  target.embedding.size, barrier, results),
        )
        for kp in (a, b)
    ]
    for p in procs:
        p.start()
    outcomes = [await asyncio.to_thread(results.get, True, 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0

    by_status = sorted(outcomes, key=lambda o: o[1])
    assert [o[1] for o in by_status] == ["failed", "ok"], outcomes
    loser, winner = by_status[0][0], by_status[1][0]
    assert by_status[0][2] == "TargetNotOpen"
    filled = await sim.get_target(target.id)
    assert filled.status == "filled"
    assert filled.submitter == canonical_address(winner)
    # the loser paid exactly the base fee; the winner the bond and a full fee
    assert await sim.balance(loser) == 2_000_000_000 - BASE_FEE
    assert await sim.balance(winner) == 2_000_000_000 - 40 * BOND_PER_BYTE - (BASE_FEE + 4 * WRITE_FEE)
    assert (await sim.info()).hits_this_epoch == 1
