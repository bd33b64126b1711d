"""`SdkChain`: the `Chain` interface over `soma_sdk.SomaClient` (testnet, localnet, explicit URLs).

Everything `SdkChain` returns is converted to the domain types in `soma_ray.chain.types` (integer
shannons, float32 numpy embeddings) and every SDK failure is re-raised as a typed `ChainError`.

- `client`: `Endpoints`, `resolve_endpoints` and `SdkChain` (the only caller of the SDK's client);
- `convert`: amounts, tolerant field readers, f32 tensor decoders and the SDK-shape converters;
- `errors`: `parse_sdk_error`, SDK exception text -> typed `ChainError`.
"""

from __future__ import annotations

from soma_ray.chain.sdk.client import PRESETS, Endpoints, SdkChain, resolve_endpoints
from soma_ray.chain.sdk.convert import (
    active_model_from_sdk,
    coin_from_sdk_object,
    decode_f32_scalar,
    decode_f32_tensor,
    manifest_from_sdk,
    model_info_from_state,
    network_info_from_sdk,
    params_from_sdk,
    shannons_from_soma,
    soma_for_shannons,
    target_from_sdk,
    target_page_from_sdk,
    tx_result_from_effects,
)
from soma_ray.chain.sdk.errors import parse_sdk_error

__all__ = [
    "PRESETS",
    "Endpoints",
    "SdkChain",
    "active_model_from_sdk",
    "coin_from_sdk_object",
    "decode_f32_scalar",
    "decode_f32_tensor",
    "manifest_from_sdk",
    "model_info_from_state",
    "network_info_from_sdk",
    "params_from_sdk",
    "parse_sdk_error",
    "resolve_endpoints",
    "shannons_from_soma",
    "soma_for_shannons",
    "target_from_sdk",
    "target_page_from_sdk",
    "tx_result_from_effects",
]
