"""Genesis of the simulated network: deterministic models and the first targets.

Genesis model weights are drawn from arrgen (so every machine builds byte-identical files),
encrypted with soma-sdk's real AES-256-CTR and written under `blobs/`, where the local HTTP
server serves them at `blob_url`, like a trainer's public bucket. By default one owner holds
them with stakes genesis_model_stake × (i+1); a `genesis_board` spreads them over clusters,
owners, stakes and commissions (board.py). With `rivals`, each rival account starts with a coin.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import arrgen
import base58
import numpy as np
import torch
from soma_models.v1.torch import Model, ModelConfig
from soma_sdk import Keypair, SomaClient

from soma_ray.chain.sim.accounts import GENESIS_OWNER_SEED, owner_keypair, rival_keypair
from soma_ray.chain.sim.board import plan_board
from soma_ray.chain.sim.settings import SimSettings
from soma_ray.chain.sim.store import TxContext, f32_blob, load_state, mint_coin, save_state
from soma_ray.chain.sim.targets import generate_target
from soma_ray.protocol.architecture import ArchitectureSettings
from soma_ray.protocol.commitments import (
    blake2b256,
    canonical_address,
    commitment,
    decryption_key_commitment,
    embedding_commitment,
)
from soma_ray.protocol.constants import PROTOCOL_VERSION
from soma_ray.protocol.difficulty import genesis_reward_per_target
from soma_ray.storage.local import LocalBlobStore

__all__ = ["GENESIS_OWNER_SEED", "genesis_owner", "genesis_weights", "write_genesis"]

# arrgen seed of genesis model i's embedding: EMBEDDING_SEED_BASE + i (a sim choice, not a protocol value)
EMBEDDING_SEED_BASE = 10_000


def genesis_owner() -> Keypair:
    """The deterministic account that owns the genesis models."""
    return owner_keypair(0)


def model_config(arch: ArchitectureSettings) -> ModelConfig:
    return ModelConfig(dropout_rate=0.0, **arch.shape())


def genesis_weights(arch: ArchitectureSettings, index: int) -> bytes:
    """Canonical safetensors bytes of genesis model `index`, N(0, 0.02) weights from arrgen."""
    model = Model(model_config(arch))
    with torch.no_grad():
        for n, (name, param) in enumerate(sorted(model.named_parameters())):
            if name.endswith("norm_1.weight") or name.endswith("norm_2.weight") or name == "final_norm.weight":
                param.fill_(1.0)
            elif name.endswith(".bias"):
                param.zero_()
            else:
                seed = index * 1_000_003 + n
                values = arrgen.normal_array(seed, list(param.shape), 0.0, 0.02)
                param.copy_(torch.from_numpy(np.ascontiguousarray(values)))
    return bytes(model.save_bytes())


def genesis_key(index: int) -> str:
    return base58.b58encode(blake2b256(b"soma-ray/sim/genesis-key/%d" % index)).decode()


def write_genesis(conn: sqlite3.Connection, settings: SimSettings, ctx: TxContext) -> None:
    """Fill an empty database with genesis state, models and targets."""
    params = settings.protocol_params()
    chain_id = load_state(conn)["chain_id"]
    state: dict[str, Any] = {
        "chain_id": chain_id,
        "epoch": 0,
        "protocol_version": PROTOCOL_VERSION,
        "params": params.to_dict(),
        "epoch_start_ms": 0,
        "value_fee_bps": params.value_fee_bps,
        "fees_this_epoch": 0,
        "validator_rewards": 0,
        "emission_pool": {
            "balance": settings.emission_pool,
            "emission_per_epoch": settings.emission_per_epoch,
        },
        "target_state": {
            "distance_threshold": float(np.float32(params.target_initial_distance_threshold)),  # f32 on chain
            "targets_generated_this_epoch": 0,
            "hits_this_epoch": 0,
            "hits_ema": 0,
            "reward_per_target": genesis_reward_per_target(settings.emission_per_epoch, params),
        },
        "faucet_amount": settings.faucet_amount,
        "blob_url": settings.blob_url.rstrip("/"),
        "architecture": settings.architecture.model_dump(),
    }
    if settings.rivals is not None:  # every process that advances the epoch plays the same rivals
        state["rivals"] = settings.rivals.model_dump()
    save_state(conn, state)
    _genesis_models(conn, settings, ctx)
    if settings.rivals is not None:
        for i in range(settings.rivals.accounts):
            address = canonical_address(rival_keypair(settings.rivals.seed, i).address())
            mint_coin(conn, ctx, address, settings.rivals.funds)
    targets = settings.genesis_targets
    count = params.target_initial_targets_per_epoch if targets is None else targets
    for i in range(count):
        if state["emission_pool"]["balance"] < state["target_state"]["reward_per_target"]:
            break
        if generate_target(conn, ctx, state, params, seed_digest=ctx.digest, seed_num=i) is None:
            break
    save_state(conn, state)


def _genesis_models(conn: sqlite3.Connection, settings: SimSettings, ctx: TxContext) -> None:
    owner = canonical_address(genesis_owner().address())
    dim = settings.architecture.embedding_dim
    blobs = LocalBlobStore(settings.blob_dir, settings.blob_url)
    board = settings.genesis_board
    plan = plan_board(board, settings.genesis_models, dim) if board is not None else []
    owners = [canonical_address(owner_keypair(k).address()) for k in range(board.owners)] if board else []
    for i in range(settings.genesis_models):
        model_id = ctx.new_object_id()
        encrypted, key = SomaClient.encrypt_weights(genesis_weights(settings.architecture, i), genesis_key(i))
        url = blobs.put(f"models/{model_id}/weights.enc", encrypted)
        if plan:
            embedding, stake, rate = plan[i].embedding, plan[i].stake, plan[i].commission_rate
            model_owner = owners[plan[i].owner]
        else:
            embedding = arrgen.normal_array(EMBEDDING_SEED_BASE + i, [dim], 0.0, 1.0)
            stake = settings.genesis_model_stake * (i + 1)  # unequal stakes exercise the sqrt weighting
            rate, model_owner = 0, owner
        commitments = {
            "url": url,
            "checksum": commitment(encrypted),
            "size": len(encrypted),
            "weights": commitment(encrypted),
            "embedding": embedding_commitment(embedding),
            "decryption_key": decryption_key_commitment(key),
        }
        conn.execute(
            "INSERT INTO models (id, owner, status, create_epoch, commit_epoch, activation_epoch, stake,"
            " pool_active, commission_rate, next_commission_rate, commitments, decryption_key, embedding)"
            " VALUES (?, ?, 'active', 0, 0, 0, ?, 1, ?, ?, ?, ?, ?)",
            (model_id, model_owner, stake, rate, rate, _json(commitments), key, f32_blob(embedding)),
        )


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
