"""The unmodified soma-sdk 0.1.15 client against the served network, every read path checked
against the simulated network's own state (protocol.md §13.2): balances to the shannon, ids,
statuses, embeddings, manifests, epochs."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import numpy as np
import pytest
from soma_sdk import Keypair, SomaClient

from soma_ray.chain.sdk import decode_f32_scalar
from soma_ray.chain.served import LocalnetServer
from soma_ray.chain.served.config import SERVER_VERSION
from soma_ray.chain.sim import SimChain
from soma_ray.chain.types import TargetStatus
from soma_ray.protocol.commitments import commitment
from soma_ray.protocol.constants import PROTOCOL_VERSION, ProtocolParams, to_soma
from soma_ray.protocol.wire.base import ObjectRef, parse_address
from soma_ray.protocol.wire.digests import from_base58, object_digest, to_base58
from soma_ray.protocol.wire.objects import AddressOwner, Object, ObjectType, coin_contents
from soma_ray.protocol.wire.transaction import PayCoins, TransactionData
from tests.chain.served.kit import addr, shannons


def sim_of(localnet: LocalnetServer) -> SimChain:
    sim = localnet.sim
    assert isinstance(sim, SimChain)
    return sim


async def funded(sim: SimChain, coins: int = 1) -> Keypair:
    keypair = Keypair.generate()
    for _ in range(coins):
        await sim.faucet(keypair.address())
    return keypair


# -- epochs and the system state ---------------------------------------------------------------


async def test_epoch_protocol_version_and_service_info(localnet: LocalnetServer, client: SomaClient) -> None:
    info = await sim_of(localnet).info()
    epoch = await client.get_epoch()
    assert epoch.epoch == info.epoch == 0
    assert await client.get_protocol_version() == PROTOCOL_VERSION == info.protocol_version
    assert await client.get_architecture_version() == info.params.model_architecture_version
    assert await client.get_chain_identifier() == "localnet"
    assert await client.get_server_version() == SERVER_VERSION
    await client.check_api_version()  # the server reports the version this SDK was built from


async def test_latest_system_state_is_the_sims(localnet: LocalnetServer, client: SomaClient) -> None:
    sim = sim_of(localnet)
    await sim.advance_epoch()
    info = await sim.info()
    state = await client.get_latest_system_state()

    assert state.epoch == info.epoch == 1
    assert state.protocol_version == info.protocol_version
    assert state.epoch_start_timestamp_ms == info.epoch_start_ms
    assert state.safe_mode is False
    params = vars(state.parameters)
    expected = ProtocolParams.from_dict({**info.params.to_dict(), "value_fee_bps": info.value_fee_bps})
    for name, value in expected.to_dict().items():
        if name == "reward_slashing_rate_bps":
            continue  # not a SystemParameters field
        got = params[name]
        if name.endswith("distance_threshold"):
            assert decode_f32_scalar(got) == np.float32(value), name
        else:
            assert got == value, name
    assert state.emission_pool.balance == info.emission_pool_balance
    assert state.emission_pool.emission_per_epoch == info.emission_per_epoch
    ts = state.target_state
    assert decode_f32_scalar(ts.distance_threshold) == np.float32(info.distance_threshold)
    assert ts.reward_per_target == info.reward_per_target
    assert ts.targets_generated_this_epoch == info.targets_generated_this_epoch == 10
    assert (ts.hits_this_epoch, ts.hits_ema) == (info.hits_this_epoch, info.hits_ema)
    assert state.validators.total_stake == 0 and state.validators.validators == []
    active = {m.model_id for m in await sim.active_models()}
    assert set(vars(state.model_registry.models)) == active
    assert await client.get_embedding_dim() == info.embedding_dim
    assert await client.get_model_min_stake() == info.params.model_min_stake
    assert await client.get_next_epoch_timestamp() == info.next_epoch_ms
    assert await client.get_following_epoch_timestamp() == info.next_epoch_ms + info.params.epoch_duration_ms


async def test_registry_models_of_every_state_convert(localnet: LocalnetServer, client: SomaClient) -> None:
    """Created and pending models travel too (the client rejects a registry it cannot convert)."""
    sim = sim_of(localnet)
    owner = await funded(sim, coins=2)
    created = await sim.create_model(owner, stake=sim.settings.protocol_params().model_min_stake)
    pending = await sim.create_model(owner, stake=sim.settings.protocol_params().model_min_stake)
    weights = b"\x01" * 64
    embedding = np.ones(sim.settings.architecture.embedding_dim, np.float32)
    encrypted, key = SomaClient.encrypt_weights(weights)
    await sim.commit_model(
        owner, pending, weights_url="http://127.0.0.1:1/w", encrypted_weights=encrypted, decryption_key=key,
        embedding=embedding,
    )
    state = await client.get_latest_system_state()
    models = vars(state.model_registry.models)
    assert set(vars(models[created].V1)) == {"Created"}
    assert set(vars(models[pending].V1)) == {"Pending"}
    assert vars(models[pending].V1)["Pending"].commit_epoch == 0
    info = await client.get_active_models()
    assert created not in {m.model_id for m in info} and pending not in {m.model_id for m in info}
    # a pending model has a manifest but no key yet
    (manifest,) = await client.get_model_manifests([pending])
    assert manifest.checksum == commitment(encrypted) and manifest.decryption_key is None


async def test_active_models_and_manifests(localnet: LocalnetServer, client: SomaClient) -> None:
    sim = sim_of(localnet)
    expected = {m.model_id: m for m in await sim.active_models()}
    got = await client.get_active_models()
    assert [m.model_id for m in got] == sorted(expected)
    for m in got:
        want = expected[m.model_id]
        assert addr(m.owner) == want.owner
        assert np.array_equal(np.asarray(m.embedding, np.float32), want.embedding)
        assert shannons(m.stake) == want.stake
        assert (m.commission_rate, m.next_epoch_commission_rate) == (want.commission_rate, want.next_epoch_commission_rate)
        assert m.has_pending_update is False

    ids = sorted(expected)[::-1]
    manifests = await client.get_model_manifests(ids)
    assert [(x.url, x.checksum, x.size, x.decryption_key) for x in manifests] == [
        (x.url, x.checksum, x.size, x.decryption_key) for x in await sim.model_manifests(ids)
    ]
    target = (await client.get_targets(limit=1))[0]
    by_target = await client.get_model_manifests(target)  # anything with .model_ids
    assert [x.url for x in by_target] == [x.url for x in await sim.model_manifests(target.model_ids)]


async def test_fetch_model_downloads_the_manifest_url(localnet: LocalnetServer, client: SomaClient) -> None:
    sim = sim_of(localnet)
    model_id = (await sim.active_models())[0].model_id
    (manifest,) = await sim.model_manifests([model_id])
    assert manifest.url.startswith(localnet.urls.blob_url + "/")
    data = await client.fetch_model(model_id)
    assert bytes(data) == await sim.fetch_model(model_id)
    assert commitment(bytes(data)) == manifest.checksum and len(data) == manifest.size


# -- coins --------------------------------------------------------------------------------------


async def test_faucet_balance_and_coins(localnet: LocalnetServer, client: SomaClient) -> None:
    sim = sim_of(localnet)
    keypair = Keypair.generate()
    response = await client.request_faucet(keypair.address())
    assert response.status == "Success"
    (sent,) = response.coins_sent
    coins = await sim.coins(keypair.address())
    assert [(c.id, c.balance) for c in coins] == [(sent.id, sent.amount)]
    assert sent.amount == sim.settings.faucet_amount

    await sim.faucet(keypair.address())  # a second coin, made by another path into the same file
    total = await sim.balance(keypair.address())
    assert shannons(await client.get_balance(keypair.address())) == total == 2 * sim.settings.faucet_amount
    assert await client.get_balance(Keypair.generate().address()) == 0.0

    objects = await client.list_owned_objects(keypair.address(), object_type="coin")
    assert sorted(o.id for o in objects) == sorted(c.id for c in await sim.coins(keypair.address()))
    for obj in objects:
        assert obj.data.object_type == "Coin"
        balance = struct.unpack("<Q", bytes(obj.data.contents)[32:])[0]  # id ‖ BCS u64
        assert balance == sim.settings.faucet_amount
        assert addr(obj.owner.AddressOwner) == addr(keypair.address())
        # the client recomputes the digest from what we sent: ours must agree (gas refs depend on it)
        ours = Object(
            object_id=parse_address(obj.id), object_type=ObjectType.COIN, version=obj.version,
            contents=coin_contents(balance), owner=AddressOwner(parse_address(keypair.address())),
            previous_transaction=from_base58(obj.previous_transaction),
        )
        assert obj.digest == to_base58(object_digest(ours))
    first = next(o for o in objects if o.id == sent.id)
    assert first.previous_transaction == sent.transfer_tx_digest


async def test_owned_objects_follow_page_tokens(localnet: LocalnetServer, client: SomaClient) -> None:
    sim = sim_of(localnet)
    keypair = await funded(sim, coins=53)  # more than the RPC's default page of 50
    objects = await client.list_owned_objects(keypair.address(), object_type="coin")
    assert len(objects) == 53
    assert sorted(o.id for o in objects) == sorted(c.id for c in await sim.coins(keypair.address()))
    assert len(await client.list_owned_objects(keypair.address(), object_type="coin", limit=7)) == 7
    assert len(await client.list_owned_objects(keypair.address())) == 53
    assert await client.list_owned_objects(keypair.address(), object_type="staked_soma") == []


async def test_faucet_refuses_a_bad_address(client: SomaClient) -> None:
    with pytest.raises(RuntimeError, match="Invalid address"):
        await client.request_faucet("not-an-address")


# -- targets ------------------------------------------------------------------------------------


def assert_same_target(got: Any, want: Any, *, status: str | None = None) -> None:
    assert got.id == want.id
    assert got.status == (status or str(want.status))
    assert np.array_equal(np.asarray(got.embedding, np.float32), want.embedding)
    assert got.model_ids == want.model_ids
    assert np.float32(got.distance_threshold) == np.float32(want.distance_threshold)
    assert got.reward_pool == want.reward_pool
    assert got.generation_epoch == want.generation_epoch
    assert got.bond_amount == want.bond_amount
    assert (got.submitter and addr(got.submitter)) == want.submitter
    assert got.winning_model_id == want.winning_model_id


async def test_open_targets_and_pages(localnet: LocalnetServer, client: SomaClient) -> None:
    sim = sim_of(localnet)
    want = {t.id: t for t in await sim.all_targets(TargetStatus.OPEN)}
    got = await client.get_targets()
    assert sorted(t.id for t in got) == sorted(want) and len(want) == 10
    for t in got:
        assert_same_target(t, want[t.id])
        assert t.data_url is None  # get_targets does not ask for data_url

    pages, token = [], None
    while True:
        page = await client.list_targets(status="open", limit=3, page_token=token)
        pages.append([t.id for t in page.targets])
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert [i for p in pages for i in p] == [t.id for t in await sim.all_targets(TargetStatus.OPEN)]
    assert (await client.list_targets(epoch=1)).targets == []
    with pytest.raises(RuntimeError, match="InvalidArgument.*invalid status_filter"):
        await client.list_targets(status="bogus")


async def test_statuses_after_fill_and_epoch_change(localnet: LocalnetServer, client: SomaClient) -> None:
    sim = sim_of(localnet)
    submitter = await funded(sim, coins=2)
    target = (await sim.all_targets(TargetStatus.OPEN))[0]
    data = b"served network data " * 20
    blobs = sim.settings.blob_dir / "data"
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / "sample.bin").write_bytes(data)
    data_url = f"{localnet.urls.blob_url}/data/sample.bin"
    await sim.submit_data(
        submitter, target.id, data=data, data_url=data_url, model_id=target.model_ids[0],
        embedding=np.zeros_like(target.embedding), distance_score=0.0, loss_score=[1.5],
    )
    filled = await sim.get_target(target.id)

    page = await client.list_targets(status="filled")
    (got,) = page.targets
    assert_same_target(got, filled)
    assert got.data_url == data_url and got.bond_amount > 0
    by_submitter = await client.get_targets(status="filled", submitter=addr(submitter.address()))
    assert [t.id for t in by_submitter] == [target.id]
    assert await client.get_targets(status="filled", submitter=addr(Keypair.generate().address())) == []
    assert bytes(await client.fetch_submission_data(target.id)) == data  # GetObject → BCS TargetV1 → URL

    epoch = await client.advance_epoch()
    assert epoch == 1 == (await sim.info()).epoch
    expired = {t.id: t for t in await sim.all_targets(TargetStatus.EXPIRED)}
    claimable = await client.get_targets(claimable=True, limit=1000)
    assert {t.id for t in claimable} == set(expired) and len(expired) >= 9
    assert {t.status for t in claimable} == {"claimable"}  # expired targets read "claimable"
    assert {t.status for t in await client.get_targets(status="expired", limit=1000)} == {"claimable"}
    (still_filled,) = await client.get_targets(status="filled")
    assert still_filled.status == "filled"  # audit window: fill epoch + 1
    await client.advance_epoch()
    (past_audit,) = await client.get_targets(status="filled")
    assert past_audit.status == "claimable"
    assert len(await client.get_targets(status="open")) == len(await sim.all_targets(TargetStatus.OPEN))


# -- time ---------------------------------------------------------------------------------------


async def test_advance_and_wait_for_next_epoch(localnet: LocalnetServer, client: SomaClient) -> None:
    sim = sim_of(localnet)
    assert await client.advance_epoch() == 1
    assert (await sim.info()).epoch == 1

    async def later() -> None:
        await asyncio.sleep(0.5)
        await sim.advance_epoch()  # another process's epoch change is seen by the poll

    moved = asyncio.create_task(later())
    assert await asyncio.wait_for(client.wait_for_next_epoch(timeout=30), 30) == 2
    await moved
    first = await client.get_epoch(1)
    assert first.epoch == 1


# -- transactions (the full walk is in test_sdk_transactions.py) ----------------------------------


async def test_a_transaction_reaches_its_checkpoint(localnet: LocalnetServer, client: SomaClient) -> None:
    """The client opens the checkpoint stream before it sends a transaction; our stream answers its
    headers at once and then delivers the executed transaction's digest, which the client awaits
    (§13.3) — never a hang."""
    sim = sim_of(localnet)
    payer = await funded(sim)
    effects = await asyncio.wait_for(client.pay_coins(payer, [addr(Keypair.generate().address())], [0.5]), 60)
    assert effects.V1.status == "Success"
    digest = effects.V1.transaction_digest
    rows = sim._read(lambda conn, s: conn.execute("SELECT kind, ok FROM txs WHERE digest = ?", (digest,)).fetchall())
    assert [(r["kind"], r["ok"]) for r in rows] == [("PayCoins", 1)]


async def test_simulation_is_refused_clearly(localnet: LocalnetServer, client: SomaClient) -> None:
    payer = await funded(sim_of(localnet))
    (coin,) = await client.list_owned_objects(payer.address())
    gas = ObjectRef(parse_address(coin.id), coin.version, from_base58(coin.digest))
    kind = PayCoins((gas,), (1000,), (parse_address(payer.address()),))
    tx = TransactionData(kind, parse_address(payer.address()), (gas,))
    with pytest.raises(RuntimeError, match="does not simulate transactions"):
        await client.simulate_transaction(tx.encode())


async def test_get_object_not_found_and_bad_id(client: SomaClient) -> None:
    with pytest.raises(RuntimeError, match="NotFound"):
        await client.get_object("0x" + "ab" * 32)
    coin_owner = Keypair.generate()
    await client.request_faucet(coin_owner.address())
    (coin,) = await client.list_owned_objects(coin_owner.address())
    obj = await client.get_object(coin.id)
    assert (obj.id, obj.version, obj.digest) == (coin.id, coin.version, coin.digest)
    assert to_soma(struct.unpack("<Q", bytes(obj.data.contents)[32:])[0]) == await client.get_balance(coin_owner.address())
