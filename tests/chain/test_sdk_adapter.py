"""SdkChain: typing against the soma-sdk stubs, error parsing, SDK-shape conversions, connecting.

No network is needed: conversions are fed SimpleNamespaces shaped like what soma-sdk 0.1.15
returns, and the connection tests use the real `SomaClient` against a closed local port.
"""

from __future__ import annotations

import asyncio
import random
import struct
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import numpy as np
import pytest
from soma_sdk import SomaClient

from soma_ray.chain import errors
from soma_ray.chain.sdk import (
    Endpoints,
    SdkChain,
    active_model_from_sdk,
    coin_from_sdk_object,
    decode_f32_scalar,
    decode_f32_tensor,
    manifest_from_sdk,
    model_info_from_state,
    network_info_from_sdk,
    parse_sdk_error,
    resolve_endpoints,
    shannons_from_soma,
    soma_for_shannons,
    target_from_sdk,
    target_page_from_sdk,
    tx_result_from_effects,
)
from soma_ray.chain.types import ModelStatus

ROOT = Path(__file__).resolve().parents[2]
DEAD_URL = "http://127.0.0.1:1"  # nothing listens on port 1
MODEL_A = "0x" + "a1" * 32
MODEL_B = "0x" + "b2" * 32
MODEL_C = "0x" + "c3" * 32
TARGET = "0x" + "0f" * 32
OWNER = "0x" + "ee" * 32
DIGEST = "8GjN3oLk2P8vQ1rS4tU6wX9yZaBcDeFgHiJkLmNoPqRs"


def f32_tensor(values: list[float], *, as_dict: bool = False) -> Any:
    """The pythonized SomaTensor shape: {dtype: 0, bytes: [u8...], shape}."""
    raw = list(struct.pack(f"<{len(values)}f", *values))
    fields = {"dtype": 0, "bytes": raw, "shape": [len(values)]}
    return fields if as_dict else NS(**fields)


# -- (1) mypy --strict against the soma-sdk stubs ---------------------------------------------------


def test_sdk_module_passes_mypy_strict_against_sdk_stubs(monkeypatch: pytest.MonkeyPatch) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    monkeypatch.chdir(ROOT)
    stdout, stderr, status = mypy_api.run(
        ["--config-file", str(ROOT / "pyproject.toml"), "soma_ray/chain/sdk"]
    )
    assert status == 0, stdout + stderr


# -- (2) parse_sdk_error ------------------------------------------------------------------------------


def test_variant_without_fields_and_digest() -> None:
    exc = RuntimeError(
        f"Transaction failed: SubmitData failed (digest: {DIGEST}): Failure {{ error: TargetNotOpen }}"
    )
    err = parse_sdk_error(exc)
    assert type(err) is errors.TargetNotOpen
    assert err.digest == DIGEST and err.detail is None and err.code == "TargetNotOpen"


def test_variant_with_fields_keeps_them_as_detail() -> None:
    exc = RuntimeError(
        f"Transaction failed: SubmitData failed (digest: {DIGEST}): "
        "Failure { error: InsufficientBond { required: 650, provided: 100 } }"
    )
    err = parse_sdk_error(exc)
    assert type(err) is errors.InsufficientBond
    assert err.digest == DIGEST
    assert err.detail == "required: 650, provided: 100"
    assert "\n" not in str(err) and "InsufficientBond" in str(err)


@pytest.mark.parametrize(
    ("failure", "cls"),
    [
        ("TargetExpired { generation_epoch: 3, current_epoch: 4 }", errors.TargetExpired),
        ("AuditWindowOpen { fill_epoch: 3, current_epoch: 4 }", errors.AuditWindowOpen),
        (f"ModelNotInTarget {{ model_id: {MODEL_A}, target_id: {TARGET} }}", errors.ModelNotInTarget),
        (
            "DistanceExceedsThreshold { score: SomaTensor(TensorData { bytes: Bytes { len: 4 }, "
            "shape: [1], dtype: F32 }), threshold: SomaTensor(TensorData { shape: [1] }) }",
            errors.DistanceExceedsThreshold,
        ),
        ("ModelRevealEpochMismatch", errors.ModelRevealEpochMismatch),
        (
            'SomaError(GenericAuthorityError { error: "Model in invalid state for this operation" })',
            errors.ModelInvalidState,
        ),
    ],
)
def test_realistic_failures_map_to_their_class(failure: str, cls: type[Exception]) -> None:
    text = f"Transaction failed: RevealModel failed (digest: {DIGEST}): Failure {{ error: {failure} }}"
    err = parse_sdk_error(RuntimeError(text))
    assert type(err) is cls
    assert isinstance(err, errors.TransactionFailed) and err.digest == DIGEST


def test_nested_detail_is_balanced() -> None:
    text = (
        f"Transaction failed: SubmitData failed (digest: {DIGEST}): Failure {{ error: "
        "DistanceExceedsThreshold { score: SomaTensor(TensorData { shape: [1] }), threshold: X } }"
    )
    err = parse_sdk_error(RuntimeError(text))
    assert isinstance(err, errors.TransactionFailed)
    assert err.detail == "score: SomaTensor(TensorData { shape: [1] }), threshold: X"


def test_unknown_variant_is_a_plain_transaction_failure_with_its_name() -> None:
    name = "SomeVariantFromAFutureProtocol"
    assert name not in errors.FAILURES_BY_NAME
    text = (
        f"Transaction failed: ClaimRewards failed (digest: {DIGEST}): "
        f"Failure {{ error: {name} {{ epoch: 9 }} }}"
    )
    err = parse_sdk_error(RuntimeError(text))
    assert type(err) is errors.TransactionFailed
    assert err.digest == DIGEST and name in str(err) and err.detail == "epoch: 9"


def test_protobuf_conversion_failure_still_names_the_variant() -> None:
    text = (
        'gRPC error: status: Internal, message: "error converting from protobuf: '
        'missing object_id for InvalidOwnership"'
    )
    assert type(parse_sdk_error(RuntimeError(text))) is errors.InvalidOwnership


@pytest.mark.parametrize(
    "text",
    [
        "transport error",
        "Error initializing RPC client: transport error",
        'status: Unavailable, message: "tcp connect error", details: [], metadata: MetadataMap { headers: {} }',
    ],
)
def test_transport_errors_are_chain_unavailable(text: str) -> None:
    err = parse_sdk_error(RuntimeError(text), endpoint=f"the SOMA RPC at {DEAD_URL}")
    assert type(err) is errors.ChainUnavailable
    assert DEAD_URL in str(err) and "\n" not in str(err)


@pytest.mark.parametrize(
    "text",
    [
        f'status: NotFound, message: "Object {TARGET} not found", details: [], metadata: MetadataMap {{ headers: {{}} }}',
        f'gRPC error: status: InvalidArgument, message: "Could not find the referenced object {TARGET} at version None"',
    ],
)
def test_missing_objects_are_object_not_found(text: str) -> None:
    err = parse_sdk_error(RuntimeError(text))
    assert type(err) is errors.ObjectNotFound
    assert TARGET in str(err) and "metadata" not in str(err)


def test_unconfigured_service_is_not_supported() -> None:
    err = parse_sdk_error(RuntimeError("Service not configured: No admin_url was provided when creating SomaClient"))
    assert type(err) is errors.NotSupported


def test_anything_else_is_a_one_line_chain_error() -> None:
    err = parse_sdk_error(RuntimeError("Epoch did not advance within 5s\nsecond line"))
    assert type(err) is errors.ChainError
    assert str(err) == "Epoch did not advance within 5s"
    already = errors.TargetNotOpen(digest="d")
    assert parse_sdk_error(already) is already


# -- (3) conversions from SDK shapes ----------------------------------------------------------------


def sdk_target(**overrides: Any) -> NS:
    fields: dict[str, Any] = dict(
        id=TARGET,
        status="open",
        embedding=[0.5, -1.25, 3.0],
        model_ids=[MODEL_A, MODEL_B],
        distance_threshold=float(np.float32(1.05)),
        reward_pool=12_685_185,
        generation_epoch=7,
        bond_amount=0,
        submitter=None,
        winning_model_id=None,
        data_url="",
    )
    fields.update(overrides)
    return NS(**fields)


def test_target_and_page_conversion() -> None:
    target = target_from_sdk(sdk_target())  # type: ignore[arg-type]
    assert target.id == TARGET and target.status == "open"
    assert target.embedding.dtype == np.float32
    np.testing.assert_array_equal(target.embedding, np.array([0.5, -1.25, 3.0], np.float32))
    assert target.model_ids == [MODEL_A, MODEL_B]
    assert target.reward_pool == 12_685_185 and target.generation_epoch == 7
    assert target.data_url is None and target.submitter is None  # "" from the SDK means unset

    filled_ns = sdk_target(status="filled", submitter=OWNER, winning_model_id=MODEL_B,
                           data_url="https://x/d.bin", bond_amount=650)
    filled = target_from_sdk(filled_ns)  # type: ignore[arg-type]
    assert filled.submitter == OWNER and filled.winning_model_id == MODEL_B
    assert filled.bond_amount == 650 and filled.data_url == "https://x/d.bin"

    page = target_page_from_sdk(NS(targets=[sdk_target()], next_page_token="0a0b"))  # type: ignore[arg-type]
    assert len(page.targets) == 1 and page.next_page_token == "0a0b"
    last = target_page_from_sdk(NS(targets=[], next_page_token=None))  # type: ignore[arg-type]
    assert last.next_page_token is None


def test_manifest_conversion() -> None:
    m = manifest_from_sdk(NS(url="https://w/m.bin", checksum="Chk", size=42, decryption_key=None))  # type: ignore[arg-type]
    assert (m.url, m.checksum, m.size, m.decryption_key) == ("https://w/m.bin", "Chk", 42, None)
    revealed = manifest_from_sdk(NS(url="u", checksum="c", size=1, decryption_key="Key58"))  # type: ignore[arg-type]
    assert revealed.decryption_key == "Key58"


def test_active_model_stake_is_exact_shannons() -> None:
    stake = 1_000_000_001  # 1.000000001 SOMA: truncating to_shannons would give ...000
    sdk_model = NS(
        model_id=MODEL_A, owner=OWNER, embedding=[1.0, 2.0], stake=stake / 1e9,
        commission_rate=100, next_epoch_commission_rate=200, commit_epoch=0, has_pending_update=True,
    )
    model = active_model_from_sdk(sdk_model)  # type: ignore[arg-type]
    assert model.stake == stake
    assert model.embedding.dtype == np.float32 and model.embedding.tolist() == [1.0, 2.0]
    assert (model.commission_rate, model.next_epoch_commission_rate) == (100, 200)
    assert model.has_pending_update is True


def test_amount_conversions_round_trip_exactly() -> None:
    rng = random.Random(7)
    samples = [0, 1, 999_999_999, 1_000_000_001, 12_685_185, 2_000_000_000]
    samples += [rng.randrange(0, 4_000_000 * 10**9) for _ in range(2000)]
    for shannons in samples:
        soma = soma_for_shannons(shannons)
        assert int(soma * 1_000_000_000) == shannons  # exactly what the SDK computes
        assert shannons_from_soma(shannons / 1e9) == shannons  # what the SDK hands back


def test_tensor_decoding() -> None:
    values = [1.05, -0.5, 2.0]
    for shape in (f32_tensor(values), f32_tensor(values, as_dict=True)):
        array = decode_f32_tensor(shape)
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, np.array(values, np.float32))
    assert decode_f32_scalar(f32_tensor([1.05])) == float(np.float32(1.05))
    assert decode_f32_scalar(f32_tensor([0.95], as_dict=True)) == float(np.float32(0.95))
    assert decode_f32_scalar(1.5) == 1.5
    np.testing.assert_array_equal(decode_f32_tensor([0.25, 0.5]), np.array([0.25, 0.5], np.float32))
    with pytest.raises(ValueError):
        decode_f32_scalar(f32_tensor([1.0, 2.0]))
    with pytest.raises(ValueError):
        decode_f32_tensor({"dtype": 1, "bytes": [0, 0], "shape": [1]})


def sdk_parameters() -> NS:
    return NS(
        epoch_duration_ms=86_400_000,
        validator_reward_allocation_bps=7000,
        model_min_stake=1_000_000_000,
        model_architecture_version=1,
        model_reveal_slash_rate_bps=5000,
        model_tally_slash_rate_bps=9500,
        target_epoch_fee_collection=1_000_000_000,
        base_fee=1000,
        write_object_fee=300,
        value_fee_bps=9,
        min_value_fee_bps=1,
        max_value_fee_bps=50,
        fee_adjustment_rate_bps=1250,
        target_models_per_target=3,
        target_embedding_dim=16,
        target_initial_distance_threshold=f32_tensor([1.05]),
        target_reward_allocation_bps=8000,
        target_hits_per_epoch=86_400,
        target_hits_ema_decay_bps=9000,
        target_difficulty_adjustment_rate_bps=10_000,
        target_max_distance_threshold=f32_tensor([2.0], as_dict=True),
        target_min_distance_threshold=f32_tensor([0.95]),
        target_initial_targets_per_epoch=100,
        target_submitter_reward_share_bps=4975,
        target_model_reward_share_bps=4975,
        target_claimer_incentive_bps=50,
        submission_bond_per_byte=65,
        max_submission_data_size=1_048_576,
        some_future_parameter=5,
    )


def pool(soma_balance: int, activation_epoch: int | None) -> NS:
    return NS(
        id="0x" + "99" * 32, activation_epoch=activation_epoch, deactivation_epoch=None,
        soma_balance=soma_balance, rewards_pool=0, pool_token_balance=soma_balance,
        exchange_rates={0: NS(soma_amount=1, pool_token_amount=1)}, pending_stake=0,
        pending_total_soma_withdraw=0, pending_pool_token_withdraw=0,
    )


def registry_manifest(url: str) -> NS:
    return NS(V1=NS(url=url, metadata=NS(V1=NS(checksum="Chk58", size=1234))))


def system_state() -> NS:
    common = dict(architecture_version=1, commission_rate=0, next_epoch_commission_rate=0, owner=OWNER)
    commitments = dict(weights_commitment="W", embedding_commitment="E", decryption_key_commitment="D")
    models = {
        MODEL_A: NS(V1=NS(Created=NS(staking_pool=pool(2_000_000_000, None), create_epoch=4, **common))),
        MODEL_B: NS(V1=NS(Pending=NS(
            staking_pool=pool(1_000_000_000, None), manifest=registry_manifest("https://w/b"),
            commit_epoch=5, **commitments, **common,
        ))),
        MODEL_C: NS(V1=NS(Active=NS(
            staking_pool=pool(3_000_000_007, 6), manifest=registry_manifest("https://w/c"),
            decryption_key="Key58", embedding=f32_tensor([0.1, 0.2]),
            pending_update=NS(manifest=registry_manifest("https://w/c2"), commit_epoch=7, **commitments),
            **commitments, **common,
        ))),
    }
    return NS(
        epoch=7,
        protocol_version=5,
        validators=NS(total_stake=0, validators=[]),
        parameters=sdk_parameters(),
        epoch_start_timestamp_ms=1_700_000_000_000,
        validator_report_records={},
        model_registry=NS(models=NS(**models), staking_pool_mappings=NS(), total_model_stake=0,
                          model_report_records=NS()),
        emission_pool=NS(balance=5_000_000_000_000, emission_per_epoch=1_370_000_000_000),
        target_state=NS(
            distance_threshold=f32_tensor([1.1]), targets_generated_this_epoch=100,
            hits_this_epoch=3, hits_ema=2, reward_per_target=12_685_185,
        ),
        safe_mode=False,
        safe_mode_accumulated_fees=0,
        safe_mode_accumulated_emissions=0,
    )


def test_network_info_from_system_state() -> None:
    info = network_info_from_sdk(system_state(), chain="localnet")
    assert (info.chain, info.epoch, info.protocol_version) == ("localnet", 7, 5)
    assert info.distance_threshold == float(np.float32(1.1))
    assert info.reward_per_target == 12_685_185
    assert info.emission_pool_balance == 5_000_000_000_000
    assert info.emission_per_epoch == 1_370_000_000_000
    assert (info.hits_this_epoch, info.hits_ema, info.targets_generated_this_epoch) == (3, 2, 100)
    assert info.epoch_start_ms == 1_700_000_000_000 and info.value_fee_bps == 9
    params = info.params
    assert params.target_embedding_dim == 16 and info.embedding_dim == 16
    assert params.target_initial_distance_threshold == float(np.float32(1.05))
    assert params.target_max_distance_threshold == 2.0
    assert params.target_min_distance_threshold == float(np.float32(0.95))
    assert params.reward_slashing_rate_bps == 5000  # not in SystemParameters: v5 default kept
    assert info.next_epoch_ms == 1_700_000_000_000 + 86_400_000


def test_model_info_from_registry_in_each_state() -> None:
    state = system_state()
    created = model_info_from_state(state, MODEL_A)
    assert created.status is ModelStatus.CREATED
    assert (created.stake, created.create_epoch, created.commit_epoch, created.manifest) == (
        2_000_000_000, 4, None, None,
    )
    pending = model_info_from_state(state, MODEL_B.upper().replace("0X", "0x"))
    assert pending.status is ModelStatus.PENDING and pending.model_id == MODEL_B
    assert pending.commit_epoch == 5 and pending.owner == OWNER
    assert pending.manifest is not None and pending.manifest.decryption_key is None
    assert (pending.manifest.url, pending.manifest.checksum, pending.manifest.size) == (
        "https://w/b", "Chk58", 1234,
    )
    active = model_info_from_state(state, MODEL_C)
    assert active.status is ModelStatus.ACTIVE and active.stake == 3_000_000_007
    assert active.manifest is not None and active.manifest.url == "https://w/c"
    assert active.manifest.decryption_key == "Key58"
    assert active.has_pending_update and active.pending_commit_epoch == 7
    with pytest.raises(errors.ObjectNotFound):
        model_info_from_state(state, "0x" + "00" * 32)


def test_tx_result_from_real_effects_shape() -> None:
    gas = "0x" + "01" * 32
    created = "0x" + "02" * 32
    deleted = "0x" + "03" * 32
    effects = NS(V1=NS(
        status="Success",
        executed_epoch=7,
        transaction_fee=NS(base_fee=1000, operation_fee=900, value_fee=6342, total_fee=8242),
        transaction_digest=DIGEST,
        gas_object_index=0,
        dependencies=[],
        version=12,
        changed_objects=[
            (gas, {"input_state": {"Exist": [[11, "d"], {"AddressOwner": OWNER}]},
                   "output_state": {"ObjectWrite": ["d2", {"AddressOwner": OWNER}]}, "id_operation": "None"}),
            (created, {"input_state": "NotExist", "output_state": {"ObjectWrite": ["d3", {"AddressOwner": OWNER}]},
                       "id_operation": "Created"}),
            (deleted, {"input_state": {"Exist": [[3, "d"], {"Shared": {"initial_shared_version": 3}}]},
                       "output_state": "NotExist", "id_operation": "Deleted"}),
        ],
        unchanged_shared_objects=[],
    ))
    result = tx_result_from_effects(effects)
    assert result.ok and result.error is None and result.digest == DIGEST
    assert result.fee == 8242
    assert (result.created, result.mutated, result.deleted) == ([created], [gas], [deleted])

    failed = NS(V1=NS(status=NS(Failure=NS(error=NS(InsufficientBond=NS(required=2, provided=1)))),
                      transaction_fee=NS(base_fee=1000, operation_fee=0, value_fee=0, total_fee=1000),
                      transaction_digest=DIGEST, changed_objects=[]))
    bad = tx_result_from_effects(failed)
    assert not bad.ok and bad.error == "InsufficientBond" and bad.fee == 1000


def test_tx_result_from_stub_effects_shape() -> None:
    ref = NS(id="0x01", version=2, digest="d", owner=OWNER)
    effects = NS(
        status="success",
        gas_used=NS(computation_cost=1000, storage_cost=600, storage_rebate=100, non_refundable_storage_fee=0),
        transaction_digest=DIGEST, created=[ref], mutated=[NS(id="0x02", version=2, digest="d", owner=OWNER)],
        deleted=["0x03"],
    )
    result = tx_result_from_effects(effects)
    assert result.ok and result.fee == 1500
    assert (result.created, result.mutated, result.deleted) == (["0x01"], ["0x02"], ["0x03"])


def test_coin_balance_from_owned_object() -> None:
    coin_id = "0x" + "cc" * 32
    contents = bytes.fromhex(coin_id[2:]) + (2_000_000_000).to_bytes(8, "little")
    obj = NS(
        data=NS(object_type="Coin", version=5, contents=contents),
        owner=NS(AddressOwner=OWNER), previous_transaction=DIGEST,
        id=coin_id, version=5, digest="dd",
    )
    coin = coin_from_sdk_object(obj, OWNER)
    assert (coin.id, coin.owner, coin.balance) == (coin_id, OWNER, 2_000_000_000)
    listed = NS(data=NS(object_type="Coin", version=5, contents=list(contents)),
                owner={"AddressOwner": OWNER}, id=coin_id)
    assert coin_from_sdk_object(listed, OWNER).balance == 2_000_000_000
    with pytest.raises(errors.NotSupported):
        coin_from_sdk_object(NS(id=coin_id, version=1, digest="d"), OWNER)


def test_endpoint_presets() -> None:
    name, local = resolve_endpoints(chain="localnet")
    assert name == "localnet" and local.rpc_url == "http://127.0.0.1:9000"
    assert local.faucet_url == "http://127.0.0.1:9123" and local.admin_url == "http://127.0.0.1:9125"
    name, test = resolve_endpoints(chain="testnet")
    assert name == "testnet" and test.admin_url is None and test.faucet_url is not None
    assert resolve_endpoints(rpc_url=DEAD_URL)[0] == DEAD_URL
    with pytest.raises(errors.ChainError):
        resolve_endpoints(chain="mainnet")
    with pytest.raises(errors.ChainError):
        resolve_endpoints()


# -- (4) connecting with the real SomaClient ----------------------------------------------------------


def test_connect_to_unreachable_url_is_one_line_chain_unavailable() -> None:
    with pytest.raises(errors.ChainUnavailable) as caught:
        asyncio.run(asyncio.wait_for(SdkChain.connect(rpc_url=DEAD_URL), 30))
    message = str(caught.value)
    assert "\n" not in message and DEAD_URL in message


def test_unconnected_services_fail_with_typed_errors() -> None:
    async def scenario() -> None:
        client = await SomaClient(DEAD_URL)  # the SDK connects lazily: this succeeds
        chain = SdkChain(client, name=DEAD_URL, endpoints=Endpoints(rpc_url=DEAD_URL))
        with pytest.raises(errors.NotSupported):
            await chain.advance_epoch()
        with pytest.raises(errors.NotSupported):
            await chain.faucet(OWNER)
        with pytest.raises(errors.ChainUnavailable):
            await chain.info()
        with pytest.raises(errors.ChainUnavailable):
            await chain.balance(OWNER)

        faucet_url = "http://127.0.0.1:2"
        admin_url = "http://127.0.0.1:3"
        wired = SdkChain(client, name=DEAD_URL, endpoints=Endpoints(
            rpc_url=DEAD_URL, faucet_url=faucet_url, admin_url=admin_url,
        ))
        with pytest.raises(errors.ChainUnavailable, match="faucet") as faucet_err:
            await wired.faucet(OWNER)
        assert faucet_url in str(faucet_err.value)
        with pytest.raises(errors.ChainUnavailable, match="admin") as admin_err:
            await wired.advance_epoch()
        assert admin_url in str(admin_err.value)

    asyncio.run(asyncio.wait_for(scenario(), 60))


# -- paging logic over the RPC's list_targets semantics ----------------------------------------------


class PagingRpc:
    """Stands in for the RPC's `list_targets` paging only (hex page tokens, per-status lists), to
    check how SdkChain walks pages; every other SDK behaviour is exercised elsewhere."""

    def __init__(self, by_status: dict[str, list[str]]) -> None:
        self.by_status = by_status
        self.calls: list[tuple[str, str | None, str | None]] = []

    async def list_targets(
        self, status: str | None = None, claimable: bool = False, epoch: int | None = None,
        limit: int | None = None, read_mask: str | None = None, submitter: str | None = None,
        page_token: str | None = None,
    ) -> NS:
        status = status or "open"
        self.calls.append((status, read_mask, page_token))
        ids = self.by_status.get(status, [])
        start = int(page_token, 16) if page_token else 0
        end = start + (limit or 100)
        shown = "claimable" if status == "expired" else status
        targets = [sdk_target(id=i, status=shown) for i in ids[start:end]]
        return NS(targets=targets, next_page_token=f"{end:04x}" if end < len(ids) else None)


def test_unfiltered_listing_walks_every_status_and_get_target_finds_by_id() -> None:
    ids = {s: [f"0x{s[0] * 2}{n:062x}" for n in range(n_)] for s, n_ in
           (("open", 3), ("filled", 0), ("expired", 2))}
    rpc = PagingRpc(ids)
    chain = SdkChain(rpc, name="fake", endpoints=Endpoints(rpc_url=DEAD_URL))  # type: ignore[arg-type]

    async def scenario() -> None:
        listed = [t async for t in chain.iter_targets(page_size=2)]
        assert [t.id for t in listed] == ids["open"] + ids["expired"]
        assert [t.status for t in listed] == ["open"] * 3 + ["claimable"] * 2
        only_open = await chain.all_targets("open")
        assert [t.id for t in only_open] == ids["open"]

        rpc.calls.clear()
        wanted = ids["expired"][1]
        found = await chain.get_target(wanted.upper().replace("0X", "0x"))
        assert found.id == wanted and found.embedding.dtype == np.float32
        masks = [mask for _, mask, _ in rpc.calls]
        assert masks[:-1] == ["id"] * (len(masks) - 1) and masks[-1] is None  # cheap scan first
        with pytest.raises(errors.ObjectNotFound):
            await chain.get_target("0x" + "77" * 32)

    asyncio.run(scenario())
