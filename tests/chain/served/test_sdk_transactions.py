"""The unmodified soma-sdk 0.1.15 client executing transactions on the served network (§13.3).

One walk through the whole game — faucet, pay_coins, merge_coins, create_model, commit_model,
advance_epoch, reveal_model, get_active_models, get_targets, score, submit_data, advance_epoch ×2,
claim_rewards, add_stake_to_model — each checked against the simulated network's own state:
balances to the shannon, fees equal to the protocol's fee rules (`soma_ray.protocol.fees`), model
and target statuses, the reward split, and the versions and digests the effects report against
what GetObject / ListOwnedObjects then show. Then what must be refused, and change nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import numpy as np
import pytest
from soma_sdk import Keypair, SomaClient

from soma_ray.chain.served import LocalnetServer
from soma_ray.chain.served.messages import rpc
from soma_ray.chain.sim import SimChain
from soma_ray.chain.types import ModelStatus, TargetStatus
from soma_ray.localnet import scorer_factory
from soma_ray.protocol.bond import submission_bond
from soma_ray.protocol.commitments import commitment, derive_id
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.protocol.fees import claim_value_fee, stake_value_fee, transfer_value_fee
from soma_ray.protocol.rewards import split_filled
from soma_ray.protocol.wire.base import ObjectRef, parse_address
from soma_ray.protocol.wire.digests import from_base58, to_base58, transaction_digest
from soma_ray.protocol.wire.signatures import SignedTransaction
from soma_ray.protocol.wire.transaction import PayCoins, TransactionData
from tests.chain.served.kit import addr, served_settings, shannons

T = TypeVar("T")
TIMEOUT = 60


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[LocalnetServer]:
    # Every cosine distance is at most 2: whatever the exact scorer finds is a hit.
    settings = served_settings(
        tmp_path, params={"target_initial_targets_per_epoch": 10, "target_initial_distance_threshold": 2.0}
    )
    async with LocalnetServer(settings, scorer_factory=scorer_factory(settings)) as server:
        yield server


@pytest.fixture
async def client(net: LocalnetServer) -> SomaClient:
    u = net.urls
    return await SomaClient(u.rpc_url, faucet_url=u.faucet_url, scoring_url=u.scoring_url, admin_url=u.admin_url)


def sim_of(server: LocalnetServer) -> SimChain:
    assert isinstance(server.sim, SimChain)
    return server.sim


async def within(call: Awaitable[T]) -> T:
    return await asyncio.wait_for(call, TIMEOUT)


async def params_now(sim: SimChain) -> tuple[ProtocolParams, int]:
    info = await sim.info()
    return info.params, info.value_fee_bps


def v1(effects: Any) -> Any:
    return effects.V1


def changes(effects: Any) -> dict[str, dict[str, Any]]:
    return {object_id: change for object_id, change in v1(effects).changed_objects}


def written(effects: Any) -> list[str]:
    """The objects the transaction wrote (every changed object that still exists)."""
    return [i for i, c in changes(effects).items() if isinstance(c["output_state"], dict)]


def check_fee(effects: Any, params: ProtocolParams, value_fee: int) -> int:
    """The four fee fields are the protocol's: base fee, a write fee per written object, the value fee."""
    fee = v1(effects).transaction_fee
    assert fee.base_fee == params.base_fee
    assert fee.operation_fee == params.write_object_fee * len(written(effects))
    assert fee.value_fee == value_fee
    assert fee.total_fee == fee.base_fee + fee.operation_fee + fee.value_fee
    return int(fee.total_fee)


async def check_objects(client: SomaClient, sim: SimChain, effects: Any) -> None:
    """What the effects say was written is exactly what the RPC now shows, at the Lamport version."""
    e = v1(effects)
    assert e.status == "Success"
    rows = sim._read(lambda conn, s: conn.execute("SELECT * FROM txs WHERE digest = ?", (e.transaction_digest,)).fetchall())
    assert len(rows) == 1 and rows[0]["ok"] == 1 and rows[0]["lamport"] == e.version
    for object_id, change in changes(effects).items():
        output = change["output_state"]
        if not isinstance(output, dict):
            with pytest.raises(RuntimeError, match="NotFound"):
                await client.get_object(object_id)
            continue
        digest, _owner = output["ObjectWrite"]
        if object_id == "0x" + "0" * 63 + "5":
            continue  # the system state is not served as an object
        obj = await client.get_object(object_id)
        assert (obj.version, obj.digest, obj.previous_transaction) == (e.version, digest, e.transaction_digest)
        if isinstance(change["input_state"], dict):
            (version, _digest), _ = change["input_state"]["Exist"]
            assert version < e.version


async def test_the_whole_game_through_the_unmodified_client(net: LocalnetServer, client: SomaClient) -> None:
    sim = sim_of(net)
    params, bps = await params_now(sim)
    kp, friend, claimer = Keypair.generate(), Keypair.generate(), Keypair.generate()
    me = addr(kp.address())

    # faucet: three 2-SOMA coins
    for _ in range(3):
        await client.request_faucet(kp.address())
    balance = await sim.balance(me)
    assert balance == 3 * sim.settings.faucet_amount

    # pay_coins: two new coins, the rest stays in the paying (gas) coin
    amounts = [0.25, 0.125]
    effects = await within(client.pay_coins(kp, [friend.address(), claimer.address()], amounts))
    total = sum(shannons(a) for a in amounts)
    fee = check_fee(effects, params, transfer_value_fee(total, bps))
    digest = from_base58(v1(effects).transaction_digest)
    created = [i for i, c in changes(effects).items() if c["id_operation"] == "Created"]
    assert sorted(created) == sorted([derive_id(digest, 0), derive_id(digest, 1)])  # the chain's ids
    # the two new coins, the gas coin, and the paying coin when the client picked another one
    assert set(created) < set(written(effects)) and len(written(effects)) in (3, 4)
    balance -= total + fee
    assert await sim.balance(me) == balance and shannons(await client.get_balance(kp.address())) == balance
    assert await sim.balance(addr(friend.address())) == shannons(0.25)
    await check_objects(client, sim, effects)

    # merge_coins: the smallest coin goes "to self" whole, every other coin pays gas and is merged
    coins = await sim.coins(me)
    assert len(coins) == 3
    smallest = min(c.balance for c in coins)
    effects = await within(client.merge_coins(kp))
    fee = check_fee(effects, params, transfer_value_fee(smallest, bps))
    deleted = [i for i, c in changes(effects).items() if c["id_operation"] == "Deleted"]
    assert len(deleted) == 1 and len(await sim.coins(me)) == 2
    balance -= fee
    assert await sim.balance(me) == balance
    await check_objects(client, sim, effects)

    # create_model: the stake comes from the gas coin; the client derives the id itself (index 0)
    model_id = await within(client.create_model(kp, commission_rate=250))
    model = await sim.get_model(model_id)
    assert model.status is ModelStatus.CREATED and model.owner == me and model.stake == params.model_min_stake
    fee = params.base_fee + 3 * params.write_object_fee + stake_value_fee(params.model_min_stake, bps)
    balance -= params.model_min_stake + fee  # gas coin, system state, the new StakedSoma
    assert await sim.balance(me) == balance

    # commit_model: only commitments travel
    dim = await client.get_embedding_dim()
    embedding = [float(x) for x in np.linspace(-1.0, 1.0, dim, dtype=np.float32)]
    encrypted, key = SomaClient.encrypt_weights(b"served weights " * 64)
    weights_url = f"{net.urls.blob_url}/models/mine/weights.enc"
    effects = await within(client.commit_model(kp, model_id, weights_url, encrypted, key, embedding))
    balance -= check_fee(effects, params, 0)
    model = await sim.get_model(model_id)
    assert model.status is ModelStatus.PENDING and model.commit_epoch == 0
    assert model.manifest is not None and model.manifest.url == weights_url
    assert model.manifest.checksum == commitment(encrypted) and model.manifest.size == len(encrypted)
    assert await sim.balance(me) == balance

    # reveal_model in the wrong epoch: executed, failed, the base fee charged
    with pytest.raises(RuntimeError, match=r"Failure \{ error: ModelRevealEpochMismatch \}"):
        await within(client.reveal_model(kp, model_id, key, embedding))
    balance -= params.base_fee
    assert await sim.balance(me) == balance

    assert await within(client.advance_epoch()) == 1
    params, bps = await params_now(sim)
    effects = await within(client.reveal_model(kp, model_id, key, embedding))
    balance -= check_fee(effects, params, 0)
    assert (await sim.get_model(model_id)).status is ModelStatus.ACTIVE
    assert model_id in {m.model_id for m in await client.get_active_models()}
    assert await sim.balance(me) == balance

    # get_targets → score → submit_data
    targets = await client.get_targets(status="open")
    assert {t.id for t in targets} == {t.id for t in await sim.all_targets(TargetStatus.OPEN)}
    target = targets[0]
    # big enough that the bond, which comes back as a coin of its own, can pay later fees: the client
    # picks gas at random among the richest coins, and a dust coin would fail with InsufficientGas
    data = b"data the served network's winner scores " * 100
    data_url = f"{net.urls.blob_url}/data/sample.bin"
    (sim.settings.blob_dir / "data").mkdir(parents=True, exist_ok=True)
    (sim.settings.blob_dir / "data" / "sample.bin").write_bytes(data)
    result = await client.score(data_url, await client.get_model_manifests(target), target.embedding, data=data)
    winner_model = target.model_ids[result.winner]
    # a distance over the threshold is refused on chain, with its details
    with pytest.raises(RuntimeError, match=r"DistanceExceedsThreshold \{ score: SomaTensor\(TensorData \{ bytes: Bytes \{ data: \[0, 0, 64, "):
        await within(client.submit_data(kp, target.id, data, data_url, winner_model, result.embedding, 3.0, result.loss_score))
    balance -= params.base_fee
    effects = await within(client.submit_data(
        kp, target.id, data, data_url, winner_model, result.embedding, result.distance[0], result.loss_score,
    ))
    bond = submission_bond(len(data), params)
    fee = check_fee(effects, params, 0)
    balance -= bond + fee
    assert await sim.balance(me) == balance
    filled = await sim.get_target(target.id)
    assert filled.status is TargetStatus.FILLED and filled.submitter == me and filled.bond_amount == bond
    assert filled.winning_model_id == winner_model and filled.data_url == data_url
    spawned = [i for i, c in changes(effects).items() if c["id_operation"] == "Created"]
    assert spawned == [derive_id(from_base58(v1(effects).transaction_digest), 2)]  # spawn-on-fill (§3.3)
    assert bytes(await client.fetch_submission_data(target.id)) == data  # GetObject: the new TargetV1
    await check_objects(client, sim, effects)

    # claim: too early, then after the audit window, by someone else (the claimer's 0.5%)
    winner_owner = (await sim.get_model(winner_model)).owner
    owner_before = await sim.balance(winner_owner)
    claimer_balance = await sim.balance(addr(claimer.address()))
    with pytest.raises(RuntimeError, match=r"AuditWindowOpen \{ fill_epoch: 1, current_epoch: 1 \}"):
        await within(client.claim_rewards(claimer, target.id))
    claimer_balance -= params.base_fee
    assert await within(client.advance_epoch()) == 2
    assert await within(client.advance_epoch()) == 3
    params, bps = await params_now(sim)  # the value fee moves at every epoch change (§4.3)
    effects = await within(client.claim_rewards(claimer, target.id))
    split = split_filled(target.reward_pool, params)
    fee = check_fee(effects, params, claim_value_fee(target.reward_pool, bps))
    assert await sim.balance(addr(claimer.address())) == claimer_balance + split.claimer - fee
    balance += split.submitter + bond
    assert await sim.balance(me) == balance
    assert await sim.balance(winner_owner) == owner_before + split.model_owner
    deleted = [i for i, c in changes(effects).items() if c["id_operation"] == "Deleted"]
    assert deleted == [target.id]  # the claimed target is deleted
    with pytest.raises(RuntimeError, match="NotFound"):
        await client.get_object(target.id)
    await check_objects(client, sim, effects)
    claimer_balance = await sim.balance(addr(claimer.address()))
    with pytest.raises(RuntimeError, match=r"Failure \{ error: InputObjectDeleted \}"):
        await within(client.claim_rewards(claimer, target.id))  # claimed already: the target is gone
    assert await sim.balance(addr(claimer.address())) == claimer_balance - params.base_fee

    # add_stake_to_model: from a coin the client picks, to an active model (counted next epoch).
    # The client picks gas at random among its richest coins: merge the small payouts first.
    coins = await sim.coins(me)
    effects = await within(client.merge_coins(kp))
    balance -= check_fee(effects, params, transfer_value_fee(min(c.balance for c in coins), bps))
    assert await sim.balance(me) == balance
    stake = 0.5
    effects = await within(client.add_stake_to_model(kp, model_id, stake))
    fee = check_fee(effects, params, stake_value_fee(shannons(stake), bps))
    balance -= shannons(stake) + fee
    assert await sim.balance(me) == balance
    row = sim._read(lambda conn, s: conn.execute("SELECT stake, pending_stake FROM models WHERE id = ?", (model_id,)).fetchone())
    assert (row["stake"], row["pending_stake"]) == (params.model_min_stake, shannons(stake))
    staked = await client.list_owned_objects(kp.address(), object_type="staked_soma")
    assert len(staked) == 2  # create_model's and this one
    await check_objects(client, sim, effects)

    # the model's life goes on: commission for next epoch, then deactivation
    effects = await within(client.set_model_commission_rate(kp, model_id, 300))
    balance -= check_fee(effects, params, 0)
    effects = await within(client.deactivate_model(kp, model_id))
    balance -= check_fee(effects, params, 0)
    assert (await sim.get_model(model_id)).status is ModelStatus.INACTIVE
    assert await sim.balance(me) == balance


async def test_transfer_coin_and_an_insufficient_balance(net: LocalnetServer, client: SomaClient) -> None:
    sim = sim_of(net)
    params, bps = await params_now(sim)
    kp, friend = Keypair.generate(), Keypair.generate()
    await client.request_faucet(kp.address())
    effects = await within(client.transfer_coin(kp, friend.address(), 0.75))
    fee = check_fee(effects, params, transfer_value_fee(shannons(0.75), bps))
    assert await sim.balance(addr(kp.address())) == sim.settings.faucet_amount - shannons(0.75) - fee
    assert await sim.balance(addr(friend.address())) == shannons(0.75)
    with pytest.raises(RuntimeError, match=r"Failure \{ error: InsufficientCoinBalance \}"):
        await within(client.pay_coins(kp, [friend.address()], [5.0]))
    assert await sim.balance(addr(kp.address())) == sim.settings.faucet_amount - shannons(0.75) - fee - params.base_fee


# -- refused: nothing changes ------------------------------------------------------------------


async def owned_ref(client: SomaClient, owner: Keypair) -> ObjectRef:
    (coin,) = await client.list_owned_objects(owner.address(), object_type="coin")
    return ObjectRef(parse_address(coin.id), coin.version, from_base58(coin.digest))


def pay(sender: Keypair, gas: ObjectRef, to: str, amount: int) -> TransactionData:
    return TransactionData(PayCoins((gas,), (amount,), (parse_address(to),)), parse_address(sender.address()), (gas,))


def request(tx: TransactionData, signed: bytes, *, digest: str | None = None) -> Any:
    """ExecuteTransactionRequest for a one-coin PayCoins (what soma-sdk would send)."""
    m = rpc()
    (kind,) = [tx.kind]
    assert isinstance(kind, PayCoins)

    def ref(r: ObjectRef) -> Any:
        return m.ObjectReference(object_id="0x" + r.object_id.hex(), version=r.version, digest=to_base58(r.digest))

    pay_coins = m.PayCoins(
        coins=[ref(c) for c in kind.coins], amounts=list(kind.amounts or ()),
        recipients=["0x" + r.hex() for r in kind.recipients],
    )
    transaction = m.Transaction(
        digest=digest or to_base58(transaction_digest(tx.encode())), kind=m.TransactionKind(pay_coins=pay_coins),
        sender="0x" + tx.sender.hex(), gas_payment=[ref(g) for g in tx.gas_payment],
    )
    (sig,) = SignedTransaction.decode(signed).signatures
    signature = m.UserSignature(simple=m.SimpleSignature(scheme=m.ED25519, signature=sig.signature, public_key=sig.public_key))
    return m.ExecuteTransactionRequest(transaction=transaction, signatures=[signature])


async def send(server: LocalnetServer, message: Any) -> Any:
    m = rpc()
    async with grpc.aio.insecure_channel(server.urls.rpc_url.removeprefix("http://")) as channel:
        call = channel.unary_unary(
            "/soma.rpc.TransactionExecutionService/ExecuteTransaction",
            request_serializer=lambda x: x.SerializeToString(),
            response_deserializer=m.ExecuteTransactionResponse.FromString,
        )
        return await call(message)


def ledger(sim: SimChain) -> tuple[int, str]:
    return sim._read(lambda conn, s: (conn.execute("SELECT COUNT(*) AS n FROM txs").fetchone()["n"], json.dumps(s)))


async def test_refused_transactions_change_nothing(net: LocalnetServer, client: SomaClient) -> None:
    sim = sim_of(net)
    kp, other = Keypair.generate(), Keypair.generate()
    await client.request_faucet(kp.address())
    to = addr(other.address())
    gas = await owned_ref(client, kp)
    tx = pay(kp, gas, to, 1000)
    before = ledger(sim)

    # signed by someone else
    with pytest.raises(RuntimeError, match="InvalidArgument.*Invalid user signature: IncorrectSigner"):
        await within(client.execute_transaction(other.sign(tx.encode())))
    # a signature that does not verify
    signed = bytearray(kp.sign(tx.encode()))
    signed[-40] ^= 1  # a byte of the signature itself
    with pytest.raises(RuntimeError, match="InvalidArgument.*Invalid user signature: InvalidSignature"):
        await within(client.execute_transaction(bytes(signed)))
    # a digest that is not the transaction's
    good = kp.sign(tx.encode())
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await send(net, request(tx, good, digest=to_base58(bytes(32))))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "does not match" in str(raised.value.details())
    # an object that does not exist
    ghost = ObjectRef(bytes([7]) * 32, 1, bytes(32))
    with pytest.raises(RuntimeError, match=r"NotFound.*Could not find the referenced object 0x0707"):
        await within(client.execute_transaction(kp.sign(pay(kp, ghost, to, 1000).encode())))
    # the right version with another digest, and a version the coin has not reached
    wrong = ObjectRef(gas.object_id, gas.version, bytes(32))
    with pytest.raises(RuntimeError, match=r"InvalidArgument.*Invalid Object digest for object 0x"):
        await within(client.execute_transaction(kp.sign(pay(kp, wrong, to, 1000).encode())))
    ahead = ObjectRef(gas.object_id, gas.version + 5, gas.digest)
    with pytest.raises(RuntimeError, match=rf"NotFound.*at version Some\(Version\({gas.version + 5}\)\)"):
        await within(client.execute_transaction(kp.sign(pay(kp, ahead, to, 1000).encode())))
    assert ledger(sim) == before

    # executed once …
    response = await send(net, request(tx, good))
    assert response.transaction.effects.status.success
    after = ledger(sim)
    balance = await sim.balance(addr(kp.address()))
    # … a replay is refused
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await send(net, request(tx, good))
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert ledger(sim) == after and await sim.balance(addr(kp.address())) == balance

    # the old version of the coin is no longer available: the node's text, which the SDK parses
    stale = pay(kp, gas, to, 2000)
    current = await owned_ref(client, kp)
    with pytest.raises(RuntimeError) as failed:
        await within(client.execute_transaction(kp.sign(stale.encode())))
    text = str(failed.value)
    assert "is not available for consumption" in text
    assert f"Object (0x{gas.object_id.hex()}, Version({gas.version}), o#{to_base58(gas.digest)})" in text
    assert f"its current version: Version({current.version})" in text
    assert ledger(sim) == after and await sim.balance(addr(kp.address())) == balance


async def test_versions_survive_a_restart_and_sim_calls_keep_them(tmp_path: Path) -> None:
    """Versions and previous transactions live in the network file: what the SimChain API writes and
    what a restarted server shows agree with what the client signs against."""
    settings = served_settings(tmp_path)
    async with LocalnetServer(settings) as server:
        u = server.urls
        client = await SomaClient(u.rpc_url, faucet_url=u.faucet_url)
        kp = Keypair.generate()
        await client.request_faucet(kp.address())
        await within(client.pay_coins(kp, [Keypair.generate().address()], [0.5]))
        await sim_of(server).pay_coins(kp, [Keypair.generate().address()], [1000])  # the sim's own API
        (coin,) = await client.list_owned_objects(kp.address(), object_type="coin")
        blob_port = int(u.blob_url.rsplit(":", 1)[1])
    async with LocalnetServer(settings.model_copy(update={"blob_port": blob_port})) as again:
        u = again.urls
        client = await SomaClient(u.rpc_url, faucet_url=u.faucet_url)
        (same,) = await client.list_owned_objects(kp.address(), object_type="coin")
        assert (same.id, same.version, same.digest, same.previous_transaction) == (
            coin.id, coin.version, coin.digest, coin.previous_transaction,
        )
        effects = await within(client.pay_coins(kp, [Keypair.generate().address()], [0.25]))
        assert v1(effects).version == coin.version + 1


async def test_submit_data_with_a_single_coin_bonds_from_the_gas_coin(net: LocalnetServer, client: SomaClient) -> None:
    """With one coin the client lets bond == gas (§13.3); the sim takes the bond after the base fee."""
    sim = sim_of(net)
    params, _ = await params_now(sim)
    kp = Keypair.generate()
    await client.request_faucet(kp.address())
    target = (await client.get_targets(status="open"))[0]
    data = b"one coin"
    effects = await within(client.submit_data(
        kp, target.id, data, "https://example.com/one", target.model_ids[0], list(target.embedding), 0.0, [1.0],
    ))
    fee = check_fee(effects, params, 0)
    bond = submission_bond(len(data), params)
    assert await sim.balance(addr(kp.address())) == sim.settings.faucet_amount - bond - fee
    assert (await sim.get_target(target.id)).bond_amount == bond


class StaleOnce:
    """An executor that, the first time, writes the gas coin the client chose just before executing:
    the client's reference is then stale, as when another process spent the coin meanwhile."""

    def __init__(self, server: LocalnetServer) -> None:
        self.server = server
        self.seen: list[str] = []

    async def execute(self, request: Any) -> Any:
        from soma_ray.chain.served.execution import ExecutionRejected, SignedTransactionExecutor

        sim = sim_of(self.server)
        gas = addr(request.transaction.gas_payment[0].object_id)  # sent without 0x
        if not self.seen:
            await asyncio.to_thread(sim._system_tx, "Touch", lambda conn, ctx, state: ctx.touch(gas))
        try:
            response = await SignedTransactionExecutor(sim).execute(request)
        except ExecutionRejected as err:
            self.seen.append(str(err))
            raise
        self.seen.append("ok")
        return response


async def test_the_clients_retry_runs_on_a_stale_coin(tmp_path: Path) -> None:
    async with LocalnetServer(served_settings(tmp_path)) as server:
        stale = StaleOnce(server)
        server.executor = stale  # read at each request by the handler below
        u = server.urls
        client = await SomaClient(u.rpc_url, faucet_url=u.faucet_url)
        kp = Keypair.generate()
        await client.request_faucet(kp.address())
        await client.request_faucet(kp.address())
        # create_model names no coin besides the gas, which the retry picks afresh (pay_coins would
        # not recover: its paying coin is chosen once, outside the client's retry loop)
        model_id = await within(client.create_model(kp, commission_rate=0))
        assert (await sim_of(server).get_model(model_id)).owner == addr(kp.address())
        assert len(stale.seen) == 2 and "is not available for consumption" in stale.seen[0] and stale.seen[1] == "ok"
