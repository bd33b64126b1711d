"""Conversions between soma-sdk values and the domain types in `soma_ray.chain.types`.

Amounts (integer shannons <-> the SDK's SOMA floats), tolerant readers for the SDK's pythonized
structs, f32 tensor decoders, and one `*_from_sdk` / `*_from_state` converter per SDK shape.

What the SDK really returns (read from soma-org/soma `python-sdk/src/lib.rs`; the `.pyi` stubs are
partly stale, so the converters below are tolerant and read fields from dicts or namespaces alike):

- `Target`, `ActiveModel`, `ModelManifest`, `ListTargetsResponse`, `FaucetResponse`: as stubbed.
- `get_latest_system_state()`: the pythonized `SystemStateV1`. Tensor-typed fields (thresholds,
  embeddings) arrive as `{dtype: 0, bytes: [u8...], shape}`; the model registry is
  `models: {"0x..": {V1: {Created|Pending|Active|Inactive: {...}}}}` (stubs say otherwise).
- Transaction methods return the pythonized Rust `TransactionEffects`, i.e.
  `{V1: {status, transaction_fee: {base_fee, operation_fee, value_fee, total_fee},
  transaction_digest, changed_objects: [(id, {input_state, output_state, id_operation})], ...}}`,
  not the stub's `gas_used/created/mutated` shape; `tx_result_from_effects` reads both.
- `list_owned_objects(owner, "coin")` returns whole objects (`data.contents` = 32-byte id
  followed by the BCS u64 balance), not bare `ObjectRef`s; `coin_from_sdk_object` reads it.
- Amount arguments and `get_balance`/`ActiveModel.stake` are SOMA floats; the SDK converts with
  `int(soma * 1e9)` (truncating). `soma_for_shannons`/`shannons_from_soma` pick the float that
  round-trips to the exact integer, so no shannon is lost either way.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from soma_ray.chain.errors import ChainError, NotSupported, ObjectNotFound
from soma_ray.chain.sdk.errors import _one_line
from soma_ray.chain.types import (
    ActiveModel,
    Coin,
    Manifest,
    ModelInfo,
    ModelStatus,
    NetworkInfo,
    StakedSoma,
    Target,
    TargetPage,
    TargetStatus,
    TxResult,
)
from soma_ray.protocol.commitments import canonical_address
from soma_ray.protocol.constants import SHANNONS_PER_SOMA, ProtocolParams
from soma_ray.protocol.wire.base import address_hex
from soma_ray.protocol.wire.objects import StakedSoma as WireStakedSoma

if TYPE_CHECKING:  # shapes from the SDK's .pyi; not importable at runtime (SimpleNamespace there)
    from soma_sdk import ActiveModel as SdkActiveModel
    from soma_sdk import ListTargetsResponse as SdkTargetPage
    from soma_sdk import ModelManifest as SdkManifest
    from soma_sdk import Target as SdkTarget

# --------------------------------------------------------------------------------------------------
# amounts
# --------------------------------------------------------------------------------------------------


def soma_for_shannons(shannons: int) -> float:
    """The SOMA float the SDK turns back into exactly `shannons` (it computes `int(soma * 1e9)`).

    Plain `shannons / 1e9` sometimes truncates to one shannon less; step to the neighbouring
    floats until the SDK's own conversion gives the exact integer.
    """
    if shannons < 0:
        raise ValueError(f"amount must be >= 0 shannons, got {shannons}")
    soma = shannons / SHANNONS_PER_SOMA
    for _ in range(64):
        got = int(soma * SHANNONS_PER_SOMA)
        if got == shannons:
            return soma
        soma = math.nextafter(soma, math.inf if got < shannons else -math.inf)
    raise ValueError(f"{shannons} shannons cannot be passed exactly to the SDK as a SOMA float")


def shannons_from_soma(soma: float) -> int:
    """Exact shannons behind a SOMA float the SDK produced with `shannons / 1e9`.

    The SDK's float came from an integer, so we pick the integer that maps to this very float
    (exact up to about 4 million SOMA, where floats are still finer than one shannon);
    `to_shannons`'s truncation would sometimes lose one shannon.
    """
    guess = round(soma * SHANNONS_PER_SOMA)
    for candidate in (guess, guess - 1, guess + 1, guess - 2, guess + 2):
        if candidate >= 0 and candidate / SHANNONS_PER_SOMA == soma:
            return candidate
    return max(guess, 0)


# --------------------------------------------------------------------------------------------------
# tolerant readers for SimpleNamespace / dict shapes
# --------------------------------------------------------------------------------------------------


def _fields(obj: object) -> dict[str, Any]:
    """The fields of a pythonized struct (SimpleNamespace or dict); {} for anything else."""
    if isinstance(obj, Mapping):
        return {str(k): v for k, v in obj.items()}
    try:
        return dict(vars(obj))
    except TypeError:
        return {}


def _get(obj: object, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _int(obj: object, name: str, default: int = 0) -> int:
    value = _get(obj, name)
    return default if value is None else int(value)


def _opt_str(obj: object, name: str) -> str | None:
    value = _get(obj, name)
    return None if value is None or value == "" else str(value)


def _variant(obj: object) -> tuple[str, Any] | None:
    """A serde enum value: "Unit" -> ("Unit", None); {"Name": inner} -> ("Name", inner)."""
    if isinstance(obj, str):
        return obj, None
    fields = _fields(obj)
    if len(fields) == 1:
        ((name, inner),) = fields.items()
        if name[:1].isupper():
            return name, inner
    return None


def _unversion(obj: object) -> Any:
    """Strip serde version wrappers such as {"V1": {...}}."""
    while True:
        variant = _variant(obj)
        if variant is None or not re.fullmatch(r"V\d+", variant[0]) or variant[1] is None:
            return obj
        obj = variant[1]


def _norm_id(object_id: str) -> str:
    """Canonical form of an object id / address for comparisons: 64 lowercase hex digits."""
    text = object_id.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    return text.zfill(64)


def _address(text: str) -> str:
    """An address as the rest of soma-ray writes it (`0x` + 64 hex digits); the SDK prints some
    addresses (model owners, coin owners) without the `0x`."""
    try:
        return canonical_address(text) if text else text
    except ValueError:
        return text


def _as_bytes(value: object) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, Iterable) and not isinstance(value, str):
        return bytes(int(b) for b in value)
    raise ValueError(f"expected bytes, got {type(value).__name__}")


_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58_ALPHABET[rem] + out
    pad = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * pad + out


def _b58_field(value: object) -> str:
    """Digests/keys are base58 strings in the SDK's output; tolerate raw bytes too."""
    if isinstance(value, str):
        return value
    return _base58(_as_bytes(value))


def decode_f32_tensor(value: object) -> np.ndarray:
    """A flat float32 array from an SDK tensor value.

    Accepts the pythonized `SomaTensor` `{dtype: 0, bytes: [u8...], shape}` (dict or namespace),
    a plain float, a list of floats, or raw little-endian bytes.
    """
    if isinstance(value, (bool, str)) or value is None:
        raise ValueError(f"not a tensor: {value!r}")
    if isinstance(value, (int, float)):
        return np.array([value], dtype=np.float32)
    if isinstance(value, np.ndarray):
        return value.astype(np.float32).reshape(-1)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(value), dtype="<f4").astype(np.float32)
    raw = _get(value, "bytes")
    if raw is not None:
        dtype = _get(value, "dtype", 0)
        if int(dtype) != 0:
            raise ValueError(f"unsupported tensor dtype {dtype} (only 0 = f32 is known)")
        data = _as_bytes(raw)
        if len(data) % 4:
            raise ValueError(f"tensor byte length {len(data)} is not a multiple of 4")
        return np.frombuffer(data, dtype="<f4").astype(np.float32)
    if isinstance(value, Iterable):
        return np.asarray(list(value), dtype=np.float32).reshape(-1)
    raise ValueError(f"cannot decode a tensor from {type(value).__name__}")


def decode_f32_scalar(value: object) -> float:
    """The f32 scalar of a one-element tensor (or a plain float), as a Python float."""
    raw = _get(value, "bytes") if not isinstance(value, (int, float)) else None
    if raw is not None and int(_get(value, "dtype", 0)) == 0:
        data = _as_bytes(raw)
        if len(data) != 4:
            raise ValueError(f"expected a scalar f32 tensor (4 bytes), got {len(data)} bytes")
        return float(struct.unpack("<f", data)[0])
    array = decode_f32_tensor(value)
    if array.size != 1:
        raise ValueError(f"expected a scalar tensor, got {array.size} values")
    return float(array[0])


# --------------------------------------------------------------------------------------------------
# converters: SDK shapes -> domain types
# --------------------------------------------------------------------------------------------------


def _target_status(t: SdkTarget) -> TargetStatus:
    try:
        return TargetStatus(str(t.status))
    except ValueError:
        raise ChainError(f"target {t.id} has an unknown status {str(t.status)!r}") from None


def target_from_sdk(t: SdkTarget) -> Target:
    """`Target` from an SDK target (missing fields arrive as 0 / "" from the SDK)."""
    return Target(
        id=str(t.id),
        status=_target_status(t),
        embedding=np.asarray(t.embedding, dtype=np.float32),
        model_ids=[str(m) for m in t.model_ids],
        distance_threshold=float(t.distance_threshold),
        reward_pool=int(t.reward_pool),
        generation_epoch=int(t.generation_epoch),
        bond_amount=int(_get(t, "bond_amount") or 0),
        submitter=_opt_str(t, "submitter"),
        winning_model_id=_opt_str(t, "winning_model_id"),
        data_url=_opt_str(t, "data_url"),
        # The SDK's Target carries no fill epoch, but a target is filled only in its generation
        # epoch (it exists from that epoch on and expires after it, §4.2), so it is that one.
        fill_epoch=int(t.generation_epoch) if _opt_str(t, "submitter") else None,
    )


def target_page_from_sdk(page: SdkTargetPage) -> TargetPage:
    return TargetPage(
        targets=[target_from_sdk(t) for t in page.targets],
        next_page_token=page.next_page_token or None,
    )


def manifest_from_sdk(m: SdkManifest) -> Manifest:
    return Manifest(
        url=str(m.url),
        checksum=str(m.checksum),
        size=int(m.size),
        decryption_key=_opt_str(m, "decryption_key"),
    )


def active_model_from_sdk(m: SdkActiveModel) -> ActiveModel:
    """`ActiveModel` from `get_active_models()` items (stake arrives as a SOMA float)."""
    return ActiveModel(
        model_id=str(m.model_id),
        owner=_address(str(m.owner)),
        embedding=np.asarray(m.embedding, dtype=np.float32),
        stake=shannons_from_soma(float(m.stake)),
        commission_rate=int(m.commission_rate),
        next_epoch_commission_rate=int(m.next_epoch_commission_rate),
        has_pending_update=bool(m.has_pending_update),
    )


_THRESHOLD_PARAMS = (
    "target_initial_distance_threshold",
    "target_max_distance_threshold",
    "target_min_distance_threshold",
)


def params_from_sdk(parameters: object) -> ProtocolParams:
    """`ProtocolParams` from `SystemState.parameters`; fields the chain lacks keep v5 defaults."""
    raw = _fields(parameters)
    for name in _THRESHOLD_PARAMS:
        if raw.get(name) is not None:
            raw[name] = decode_f32_scalar(raw[name])
    defaults = ProtocolParams()
    for name, value in list(raw.items()):
        if name in _THRESHOLD_PARAMS or not hasattr(defaults, name):
            continue
        raw[name] = int(value)
    return ProtocolParams.from_dict(raw)


def network_info_from_sdk(
    state: object, *, chain: str, protocol_version: int | None = None
) -> NetworkInfo:
    """`NetworkInfo` from `get_latest_system_state()`."""
    params = params_from_sdk(_get(state, "parameters"))
    target_state = _get(state, "target_state")
    emission = _get(state, "emission_pool")
    version = _get(state, "protocol_version")
    if version is None:
        if protocol_version is None:
            raise ChainError("system state has no protocol_version and none was given")
        version = protocol_version
    return NetworkInfo(
        chain=chain,
        epoch=_int(state, "epoch"),
        protocol_version=int(version),
        params=params,
        distance_threshold=decode_f32_scalar(_get(target_state, "distance_threshold")),
        reward_per_target=_int(target_state, "reward_per_target"),
        emission_pool_balance=_int(emission, "balance"),
        emission_per_epoch=_int(emission, "emission_per_epoch"),
        hits_this_epoch=_int(target_state, "hits_this_epoch"),
        hits_ema=_int(target_state, "hits_ema"),
        targets_generated_this_epoch=_int(target_state, "targets_generated_this_epoch"),
        epoch_start_ms=_int(state, "epoch_start_timestamp_ms"),
        value_fee_bps=params.value_fee_bps,
    )


def _registry_manifest(manifest: object, decryption_key: object) -> Manifest | None:
    """A manifest inside the registry: {V1: {url, metadata: {V1: {checksum, size}}}}."""
    if manifest is None:
        return None
    inner = _unversion(manifest)
    metadata = _unversion(_get(inner, "metadata")) if _get(inner, "metadata") is not None else inner
    checksum = _get(metadata, "checksum")
    url = _get(inner, "url")
    if url is None or checksum is None:
        return None
    return Manifest(
        url=str(url),
        checksum=_b58_field(checksum),
        size=_int(metadata, "size"),
        decryption_key=None if decryption_key is None else _b58_field(decryption_key),
    )


def _find_model(registry: object, model_id: str) -> tuple[str, Any] | None:
    wanted = _norm_id(model_id)
    for table in ("models", "pending_models"):  # `pending_models` only in the stale .pyi
        for key, entry in _fields(_get(registry, table)).items():
            if _norm_id(key) == wanted:
                return key, entry
    return None


def model_ids_in_state(state: object) -> list[str]:
    """Every model id in the system state's model registry."""
    registry = _get(state, "model_registry")
    return [str(key) for table in ("models", "pending_models") for key in _fields(_get(registry, table))]


def model_info_from_state(state: object, model_id: str) -> ModelInfo:
    """`ModelInfo` from the system state's model registry (best effort over the nested shape).

    The registry keeps `create_epoch` only while a model is Created; for later states we report
    the earliest epoch it still records (the commit epoch, or activation epoch - 1 for revealed
    models). `commit_epoch` is known only while Pending; the pending *update*'s commit epoch of an
    Active model is `pending_commit_epoch`.
    """
    found = _find_model(_get(state, "model_registry"), model_id)
    if found is None:
        raise ObjectNotFound(f"model {model_id} is not in the model registry")
    key, entry = found
    variant = _variant(_unversion(entry))
    if variant is None or variant[0].lower() not in {s.value for s in ModelStatus}:
        raise ChainError(f"model {model_id}: unrecognised registry entry shape")
    state_name, fields = variant
    status = ModelStatus(state_name.lower())
    pool = _get(fields, "staking_pool")
    activation = _get(pool, "activation_epoch")
    commit_epoch = _get(fields, "commit_epoch")
    if _get(fields, "create_epoch") is not None:
        create_epoch = int(_get(fields, "create_epoch"))
    elif commit_epoch is not None:
        create_epoch = int(commit_epoch)
    elif activation is not None:
        create_epoch = max(int(activation) - 1, 0)
    else:
        create_epoch = 0
    pending = _get(fields, "pending_update")
    return ModelInfo(
        model_id=key if key.startswith("0x") else model_id,
        owner=_address(str(_get(fields, "owner", ""))),
        status=status,
        stake=_int(pool, "soma_balance"),
        create_epoch=create_epoch,
        commit_epoch=None if commit_epoch is None else int(commit_epoch),
        manifest=_registry_manifest(_get(fields, "manifest"), _get(fields, "decryption_key")),
        has_pending_update=pending is not None,
        pending_commit_epoch=None if pending is None else _int(pending, "commit_epoch"),
        commission_rate=_int(fields, "commission_rate"),
        next_epoch_commission_rate=_int(fields, "next_epoch_commission_rate", _int(fields, "commission_rate")),
    )


def staking_pool_models(state: object) -> dict[str, str]:
    """Pool id -> model id, from the registry's `staking_pool_mappings` (the map the chain routes
    `WithdrawStake` by, §5), completed from each model's `staking_pool.id`."""
    registry = _get(state, "model_registry")
    mappings = _fields(_get(registry, "staking_pool_mappings"))
    found = {_norm_id(str(pool)): _address(str(model)) for pool, model in mappings.items()}
    for table in ("models", "pending_models"):
        for key, entry in _fields(_get(registry, table)).items():
            variant = _variant(_unversion(entry))
            pool_id = _get(_get(variant[1], "staking_pool"), "id") if variant is not None else None
            if pool_id is not None:
                found.setdefault(_norm_id(str(pool_id)), _address(key))
    return found


def staked_from_sdk_object(obj: object, owner: str, pool_models: Mapping[str, str]) -> StakedSoma:
    """`StakedSoma` from a `list_owned_objects(owner, "staked_soma")` item: `data.contents` is the
    32-byte object id followed by BCS `StakedSomaV1{pool_id, stake_activation_epoch, principal}`."""
    object_id = str(_get(obj, "id", ""))
    data = _get(obj, "data")
    contents = _get(data, "contents") if data is not None else None
    if contents is None:
        raise NotSupported("this soma-sdk returns staked objects without contents, so stakes cannot be read")
    raw = _as_bytes(contents)
    if len(raw) == 80:
        raw = raw[32:]
    try:
        stake = WireStakedSoma.decode(raw)
    except ValueError as err:
        raise ChainError(f"staked object {object_id}: unreadable contents ({err})") from None
    pool_id = address_hex(stake.pool_id)
    return StakedSoma(
        id=_address(object_id), owner=_address(owner), pool_id=pool_id, model_id=pool_models.get(_norm_id(pool_id)),
        principal=int(stake.principal), stake_activation_epoch=int(stake.stake_activation_epoch),
    )


def _object_id(value: object) -> str:
    if isinstance(value, str):
        return value
    return str(_get(value, "id", value))


def tx_result_from_effects(effects: object) -> TxResult:
    """`TxResult` from the effects a transaction method returns.

    Real shape (pythonized `TransactionEffects::V1`): `fee` is `transaction_fee.total_fee`
    (base + per-object-write + value fee, all charged to the gas coin); objects are classified from
    `changed_objects` by `id_operation` (Created/Deleted) and otherwise as mutated (or deleted
    when nothing is written back). Stub shape (`gas_used`, `created`, `mutated`, `deleted`):
    `fee = computation_cost + storage_cost - storage_rebate`.
    """
    inner = _unversion(effects)
    digest = str(_get(inner, "transaction_digest", ""))
    status = _get(inner, "status")
    variant = _variant(status)
    ok = variant is not None and variant[0].lower() == "success"
    error: str | None = None
    if not ok:
        payload = variant[1] if variant is not None else None
        failure = _get(payload, "error") if payload is not None else None
        inner_variant = _variant(failure) if failure is not None else None
        if inner_variant is not None:
            error = inner_variant[0]
        elif failure is not None:
            error = _one_line(str(failure))
        else:
            error = variant[0] if variant is not None else _one_line(str(status))

    fee_info = _get(inner, "transaction_fee")
    if fee_info is not None:
        fee = _get(fee_info, "total_fee")
        if fee is None:
            fee = sum(_int(fee_info, k) for k in ("base_fee", "operation_fee", "value_fee"))
        fee = int(fee)
    else:
        gas = _get(inner, "gas_used")
        fee = (
            _int(gas, "computation_cost") + _int(gas, "storage_cost") - _int(gas, "storage_rebate")
        )

    created: list[str] = []
    mutated: list[str] = []
    deleted: list[str] = []
    changed = _get(inner, "changed_objects")
    if changed is not None:
        for item in changed:
            if isinstance(item, (list, tuple)) and len(item) == 2:
                object_id, change = str(item[0]), item[1]
            else:
                object_id, change = str(_get(item, "id", "")), item
            operation = _variant(_get(change, "id_operation", "None"))
            op_name = operation[0] if operation is not None else "None"
            out = _variant(_get(change, "output_state"))
            if op_name == "Created":
                created.append(object_id)
            elif op_name == "Deleted" or (out is not None and out[0] == "NotExist"):
                deleted.append(object_id)
            else:
                mutated.append(object_id)
    else:
        created = [_object_id(o) for o in _get(inner, "created") or []]
        mutated = [_object_id(o) for o in _get(inner, "mutated") or []]
        deleted = [_object_id(o) for o in _get(inner, "deleted") or []]
    return TxResult(
        digest=digest,
        ok=ok,
        fee=fee,
        created=created,
        mutated=mutated,
        deleted=deleted,
        error=error,
    )


def coin_from_sdk_object(obj: object, owner: str) -> Coin:
    """`Coin` from a `list_owned_objects(owner, "coin")` item.

    The balance is the BCS u64 after the 32-byte object id in `data.contents` (`Object::as_coin`);
    a bare `ObjectRef` has no balance and raises `NotSupported`.
    """
    object_id = str(_get(obj, "id", ""))
    balance = _get(obj, "balance")
    if balance is None:
        data = _get(obj, "data")
        contents = _get(data, "contents") if data is not None else None
        if contents is None:
            raise NotSupported(
                "this soma-sdk returns coins without contents, so coin balances cannot be read; "
                "use balance() for the total"
            )
        raw = _as_bytes(contents)
        if len(raw) == 40:
            raw = raw[32:]
        if len(raw) != 8:
            raise NotSupported(f"coin {object_id}: unexpected contents length {len(raw)}")
        balance = int.from_bytes(raw, "little")
    owner_field = _get(obj, "owner")
    owner_variant = _variant(owner_field)
    if owner_variant is not None and owner_variant[0] == "AddressOwner":
        owner = str(owner_variant[1])
    return Coin(id=object_id, owner=_address(owner), balance=int(balance))
