"""The `Chain` contract, run against every chain we can reach.

Always the simulated network (a fresh `SimChain` in tmp_path) and `SdkChain` over the same kind of
network served in-process behind SOMA's wire protocol (`soma_ray.chain.served`, free ports); also a
real network through `SdkChain` when `SOMA_RPC_URL` is set (`SOMA_FAUCET_URL` and `SOMA_ADMIN_URL`
unlock the tests that need funds or a forced epoch change, e.g. a localnet).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from soma_sdk import Keypair

from soma_ray.chain import errors
from soma_ray.chain.base import Chain
from soma_ray.chain.sim import SimChain, SimSettings
from soma_ray.chain.types import ModelStatus
from soma_ray.protocol.commitments import canonical_address

RPC_URL = os.environ.get("SOMA_RPC_URL")
FAUCET_URL = os.environ.get("SOMA_FAUCET_URL")
ADMIN_URL = os.environ.get("SOMA_ADMIN_URL")

CHAINS = ["sim", "served", *(["sdk"] if RPC_URL else [])]


def _norm(address: str) -> str:
    return canonical_address(address)


@pytest.fixture(params=CHAINS)
async def chain(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Chain]:
    if request.param == "sim":
        sim = SimChain(SimSettings.model_validate({
            "path": tmp_path / "sim", "genesis_models": 4, "genesis_targets": 10,
            "params": {"target_initial_targets_per_epoch": 10},
        }))
        yield sim
        await sim.close()
        return
    from soma_ray.chain.sdk import SdkChain

    if request.param == "served":
        from soma_ray.chain.served import LocalnetServer
        from tests.chain.served.kit import served_settings

        async with LocalnetServer(served_settings(tmp_path)) as server:
            u = server.urls
            served = await SdkChain.connect(rpc_url=u.rpc_url, faucet_url=u.faucet_url, admin_url=u.admin_url)
            yield served
            await served.close()
        return
    sdk = await SdkChain.connect(rpc_url=RPC_URL, faucet_url=FAUCET_URL, admin_url=ADMIN_URL)
    sdk.has_faucet = FAUCET_URL is not None  # type: ignore[attr-defined]
    sdk.has_admin = ADMIN_URL is not None  # type: ignore[attr-defined]
    yield sdk
    await sdk.close()


def needs_faucet(chain: Chain) -> None:
    if not getattr(chain, "has_faucet", True):
        pytest.skip("no SOMA_FAUCET_URL")


def needs_admin(chain: Chain) -> None:
    if not getattr(chain, "has_admin", True):
        pytest.skip("no SOMA_ADMIN_URL")


async def funded(chain: Chain) -> Keypair:
    needs_faucet(chain)
    kp = Keypair.generate()
    await chain.faucet(kp.address())
    return kp


async def test_info_is_sane(chain: Chain) -> None:
    info = await chain.info()
    p = info.params
    assert info.epoch >= 0
    assert info.protocol_version >= 1
    assert info.embedding_dim > 0
    assert p.base_fee > 0 and p.write_object_fee > 0
    assert p.model_min_stake > 0
    assert 1 <= p.target_models_per_target <= 10
    assert p.target_min_distance_threshold <= info.distance_threshold <= p.target_max_distance_threshold
    assert float(np.float32(info.distance_threshold)) == info.distance_threshold  # an f32 on chain
    assert info.reward_per_target > 0
    assert p.min_value_fee_bps <= info.value_fee_bps <= p.max_value_fee_bps
    assert info.emission_pool_balance >= 0 and info.emission_per_epoch >= 0
    assert info.hits_this_epoch >= 0 and info.targets_generated_this_epoch >= 0
    assert info.next_epoch_ms == info.epoch_start_ms + p.epoch_duration_ms


async def test_list_targets_pagination(chain: Chain) -> None:
    first = await chain.list_targets("open", limit=2)
    assert len(first.targets) <= 2
    epoch = (await chain.info()).epoch
    for t in first.targets:
        assert t.status == "open" and t.generation_epoch == epoch
    if first.next_page_token:
        second = await chain.list_targets("open", limit=2, page_token=first.next_page_token)
        assert not {t.id for t in first.targets} & {t.id for t in second.targets}
    ids = [t.id async for t in chain.iter_targets("open", page_size=3)]
    assert len(ids) == len(set(ids))
    assert {t.id for t in first.targets} <= set(ids)


async def test_open_targets_have_resolvable_manifests(chain: Chain) -> None:
    page = await chain.list_targets("open", limit=5)
    if not page.targets:
        pytest.skip("no open targets on this network right now")
    info = await chain.info()
    for t in page.targets:
        assert t.embedding.shape == (info.embedding_dim,)
        assert t.embedding.dtype == np.float32
        assert 1 <= len(t.model_ids) <= info.params.target_models_per_target
        assert t.submitter is None and t.bond_amount == 0
        manifests = await chain.model_manifests(t.model_ids)
        assert len(manifests) == len(t.model_ids)
        for m in manifests:
            assert m.url and m.checksum and m.size > 0
            assert m.decryption_key  # assigned models are active: their key is revealed


async def test_faucet_raises_balance(chain: Chain) -> None:
    needs_faucet(chain)
    kp = Keypair.generate()
    assert await chain.balance(kp.address()) == 0
    coins = await chain.faucet(kp.address())
    assert coins and all(c.balance > 0 for c in coins)
    assert await chain.balance(kp.address()) == sum(c.balance for c in coins)
    assert {c.id for c in coins} <= {c.id for c in await chain.coins(kp.address())}


async def test_create_model_is_created(chain: Chain) -> None:
    kp = await funded(chain)
    info = await chain.info()
    model_id = await chain.create_model(kp)
    model = await chain.get_model(model_id)
    assert model.status is ModelStatus.CREATED
    assert _norm(model.owner) == _norm(kp.address())
    assert model.stake == info.params.model_min_stake
    assert model.create_epoch == info.epoch
    assert model.manifest is None
    assert [m.model_id for m in await chain.models_owned(kp.address())] == [model.model_id]
    assert await chain.models_owned(Keypair.generate().address()) == []
    with pytest.raises(errors.ManifestCountMismatch):
        await chain.model_manifests([model_id])


async def test_far_off_submission_is_refused(chain: Chain) -> None:
    page = await chain.list_targets("open", limit=1)
    if not page.targets:
        pytest.skip("no open targets on this network right now")
    kp = await funded(chain)
    t = page.targets[0]
    before = await chain.balance(kp.address())
    with pytest.raises(errors.DistanceExceedsThreshold):
        await chain.submit_data(
            kp, t.id, data=b"far away", data_url="http://127.0.0.1:9/none", model_id=t.model_ids[0],
            embedding=np.zeros(t.embedding.size, np.float32), distance_score=2.5, loss_score=[1.0],
        )
    info = await chain.info()
    assert await chain.balance(kp.address()) == before - info.params.base_fee


async def test_advance_epoch_increments_epoch(chain: Chain) -> None:
    needs_admin(chain)
    before = (await chain.info()).epoch
    after = await chain.advance_epoch()
    assert after == before + 1
    assert (await chain.info()).epoch == after
