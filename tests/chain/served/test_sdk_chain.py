"""Our own `SdkChain` (the `network: localnet` / explicit-URL adapter) reading the served network:
every read answers what `SimChain` answers over the same file."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import numpy as np
import pytest
from soma_sdk import Keypair, SomaClient

from soma_ray.chain import errors
from soma_ray.chain.sdk import SdkChain
from soma_ray.chain.served import LocalnetServer
from soma_ray.chain.sim import SimChain
from soma_ray.chain.types import ModelStatus, NetworkInfo, Target, TargetStatus
from soma_ray.protocol.commitments import canonical_address
from soma_ray.protocol.constants import ProtocolParams


@pytest.fixture
async def sdk(localnet: LocalnetServer) -> AsyncIterator[SdkChain]:
    urls = localnet.urls
    chain = await SdkChain.connect(rpc_url=urls.rpc_url, faucet_url=urls.faucet_url, admin_url=urls.admin_url)
    yield chain
    await chain.close()


def same_info(a: NetworkInfo, b: NetworkInfo) -> bool:
    """Equal up to the chain name and f32 rounding: the chain keeps thresholds as f32 (SimChain's
    parameters hold the Python float they were configured with)."""
    f32 = {k: float(np.float32(v)) if isinstance(v, float) else v for k, v in b.params.to_dict().items()}
    return dataclasses.replace(a, chain=b.chain) == dataclasses.replace(b, params=ProtocolParams.from_dict(f32))


def same_target(a: Target, b: Target) -> bool:
    # The SDK's Target carries no fill epoch; everything else must agree.
    return dataclasses.replace(a, embedding=np.zeros(1), fill_epoch=None) == dataclasses.replace(
        b, embedding=np.zeros(1), fill_epoch=None
    ) and np.array_equal(a.embedding, b.embedding)


async def test_sdk_chain_reads_what_the_sim_holds(localnet: LocalnetServer, sdk: SdkChain) -> None:
    sim = localnet.sim
    assert isinstance(sim, SimChain)
    assert same_info(await sdk.info(), await sim.info())

    sdk_open, sim_open = await sdk.all_targets(TargetStatus.OPEN), await sim.all_targets(TargetStatus.OPEN)
    assert len(sdk_open) == len(sim_open) == 10
    assert all(same_target(a, b) for a, b in zip(sdk_open, sim_open, strict=True))
    page = await sdk.list_targets(TargetStatus.OPEN, limit=4)
    assert len(page.targets) == 4 and page.next_page_token
    assert same_target(await sdk.get_target(sim_open[7].id), sim_open[7])
    with pytest.raises(errors.ObjectNotFound):
        await sdk.get_target("0x" + "0" * 63 + "7")

    sdk_models, sim_models = await sdk.active_models(), await sim.active_models()
    assert [(m.model_id, m.owner, m.stake) for m in sdk_models] == [(m.model_id, m.owner, m.stake) for m in sim_models]
    assert all(np.array_equal(a.embedding, b.embedding) for a, b in zip(sdk_models, sim_models, strict=True))
    first = sim_models[0].model_id
    info = await sdk.get_model(first)
    assert info.status is ModelStatus.ACTIVE and info.stake == sim_models[0].stake
    assert info.manifest == (await sim.get_model(first)).manifest
    ids = [m.model_id for m in sim_models]
    assert await sdk.model_manifests(ids) == await sim.model_manifests(ids)
    assert await sdk.fetch_model(first) == await sim.fetch_model(first)


async def test_sdk_chain_faucet_coins_and_epochs(localnet: LocalnetServer, sdk: SdkChain) -> None:
    sim = localnet.sim
    assert isinstance(sim, SimChain)
    keypair = Keypair.generate()
    sent = await sdk.faucet(keypair.address())
    assert sent == await sim.coins(keypair.address())
    await sim.faucet(keypair.address())
    assert await sdk.balance(keypair.address()) == await sim.balance(keypair.address())
    assert sorted(await sdk.coins(keypair.address()), key=lambda c: c.id) == sorted(
        await sim.coins(keypair.address()), key=lambda c: c.id
    )

    assert await sdk.advance_epoch() == 1
    assert len(await sdk.all_targets()) == len(await sim.all_targets())  # open + filled + expired

    async def later() -> None:
        await asyncio.sleep(0.3)
        await sim.advance_epoch()

    task = asyncio.create_task(later())
    assert await sdk.wait_for_next_epoch(timeout=30) == 2
    await task
    assert same_info(await sdk.info(), await sim.info())


async def test_sdk_chain_transactions_execute_on_the_served_network(localnet: LocalnetServer, sdk: SdkChain) -> None:
    """SdkChain's transaction methods against the served network: the same fees and results the
    sim's own API gives."""
    sim = localnet.sim
    assert isinstance(sim, SimChain)
    payer, payee = Keypair.generate(), Keypair.generate()
    await sim.faucet(payer.address())
    tx = await asyncio.wait_for(sdk.pay_coins(payer, [payee.address()], [1000]), 60)
    assert tx.ok and tx.fee > 0
    assert await sim.balance(payee.address()) == 1000
    assert await sim.balance(payer.address()) == sim.settings.faucet_amount - 1000 - tx.fee
    model_id = await asyncio.wait_for(sdk.create_model(payer, commission_rate=10), 60)
    assert (await sim.get_model(model_id)).status is ModelStatus.CREATED
    # revealing a model never committed: the node reports it as an "other" error with a fixed text,
    # which SdkChain maps back to the sim's name
    with pytest.raises(errors.ModelInvalidState):
        await asyncio.wait_for(
            sdk.reveal_model(payer, model_id, decryption_key="1" * 32, embedding=np.zeros(4, np.float32)), 60
        )


async def test_sdk_chain_full_cycle_on_the_served_network(localnet: LocalnetServer, sdk: SdkChain) -> None:
    """Every SdkChain transaction method, the way the driver uses them, against the served network;
    each TxResult agrees with the sim's ledger and every balance with the sim's."""
    sim = localnet.sim
    assert isinstance(sim, SimChain)
    kp = Keypair.generate()
    for _ in range(3):
        await sdk.faucet(kp.address())
    me = canonical_address(kp.address())

    def fee_of(digest: str) -> int:
        row = sim._read(lambda conn, s: conn.execute("SELECT fee, ok FROM txs WHERE digest = ?", (digest,)).fetchone())
        assert row["ok"] == 1
        return int(row["fee"])

    balance = await sim.balance(me)
    tx = await sdk.merge_coins(kp)
    assert tx.ok and tx.fee == fee_of(tx.digest) and len(tx.deleted) == 1
    balance -= tx.fee
    assert await sdk.balance(me) == await sim.balance(me) == balance

    model_id = await sdk.create_model(kp, commission_rate=5)
    stake = (await sim.get_model(model_id)).stake
    balance = await sim.balance(me)
    dim = (await sdk.info()).embedding_dim
    embedding = np.linspace(0.5, -0.5, dim, dtype=np.float32)
    encrypted, key = SomaClient.encrypt_weights(b"cycle weights" * 32)
    tx = await sdk.commit_model(
        kp, model_id, weights_url="https://example.com/w.bin", encrypted_weights=encrypted, decryption_key=key,
        embedding=embedding,
    )
    assert tx.fee == fee_of(tx.digest)
    assert (await sdk.get_model(model_id)).status is ModelStatus.PENDING
    await sdk.advance_epoch()
    tx = await sdk.reveal_model(kp, model_id, decryption_key=key, embedding=embedding)
    assert (await sdk.get_model(model_id)).status is ModelStatus.ACTIVE
    assert model_id in {m.model_id for m in await sdk.active_models()}

    target = (await sdk.all_targets(TargetStatus.OPEN))[0]
    data = b"cycle data" * 400  # a bond (returned as its own coin) that can pay later fees
    (sim.settings.blob_dir / "d.bin").write_bytes(data)  # served by the network's blob server
    tx = await sdk.submit_data(
        kp, target.id, data=data, data_url=f"{sim.settings.blob_url}/d.bin", model_id=target.model_ids[0],
        embedding=target.embedding, distance_score=0.0, loss_score=[1.0],
    )
    assert tx.ok and tx.fee == fee_of(tx.digest)
    assert (await sdk.get_target(target.id)).status is TargetStatus.FILLED
    assert await sdk.fetch_submission_data(target.id) == data == await sim.fetch_submission_data(target.id)
    await sdk.advance_epoch()
    await sdk.advance_epoch()
    before = await sim.balance(me)
    claimer = Keypair.generate()  # its 0.5% is a dust coin: kept away from kp's gas choices
    await sdk.faucet(claimer.address())
    tx = await sdk.claim_rewards(claimer, target.id)
    assert tx.ok and target.id in tx.deleted
    with pytest.raises(errors.ObjectNotFound):
        await sdk.get_target(target.id)
    assert await sim.balance(me) > before

    await sdk.merge_coins(kp)  # the client picks gas among its richest coins at random: no dust
    tx = await sdk.add_stake_to_model(kp, model_id, 10**9 // 4)
    assert tx.ok and tx.fee == fee_of(tx.digest)
    tx = await sdk.deactivate_model(kp, model_id)
    assert (await sdk.get_model(model_id)).status is ModelStatus.INACTIVE
    assert (await sim.get_model(model_id)).stake >= stake
    assert await sdk.balance(me) == await sim.balance(me)


async def test_sdk_chain_fetches_a_strangers_weights_bounded(localnet: LocalnetServer, sdk: SdkChain) -> None:
    """A manifest's URL, size and checksum are its owner's word (§13), and the SDK's own fetch_model
    reads any URL whole: ours reads http(s) only, at most the manifest's size and the caller's bound,
    and checks the checksum."""
    import json
    import sqlite3

    from soma_ray.storage.fetcher import TooLargeError, UnsupportedURLError
    from tests.cluster.kit import free_port

    sim = localnet.sim
    assert isinstance(sim, SimChain)
    first, second = [m.model_id for m in (await sim.active_models())[:2]]
    (own,), (other,) = await sim.model_manifests([first]), await sim.model_manifests([second])
    honest = await sim.fetch_model(first)
    assert await sdk.fetch_model(first) == honest and len(honest) == own.size
    with pytest.raises(TooLargeError):
        await sdk.fetch_model(first, max_bytes=own.size - 1)  # the caller's bound

    def claim(**fields: object) -> None:
        """The model's owner committed another manifest."""
        with sqlite3.connect(sim.settings.path / "sim.db") as conn:
            (text,) = conn.execute("SELECT commitments FROM models WHERE id = ?", (first,)).fetchone()
            conn.execute("UPDATE models SET commitments = ? WHERE id = ?",
                         (json.dumps({**json.loads(text), **fields}, sort_keys=True), first))

    claim(size=own.size - 1)  # serves more than it says
    with pytest.raises(TooLargeError):
        await sdk.fetch_model(first)
    claim(url=other.url, size=other.size)  # serves other bytes than it committed
    with pytest.raises(errors.ChainError, match="do not match their on-chain checksum"):
        await sdk.fetch_model(first)
    claim(url="file:///etc/hostname", size=own.size)  # names a local file
    with pytest.raises(UnsupportedURLError):
        await sdk.fetch_model(first)
    gone = f"http://127.0.0.1:{free_port()}/weights"
    claim(url=gone)  # nothing answers there, nor at the RPC's copy
    with pytest.raises(errors.ChainUnavailable, match=f"cannot download {gone} .* nor its copy at"):
        await sdk.fetch_model(first)
    claim(url=own.url, size=own.size)
    assert await sdk.fetch_model(first) == honest
