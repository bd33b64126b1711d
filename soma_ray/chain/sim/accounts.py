"""The simulated network's own deterministic accounts: genesis owners and background rivals."""

from __future__ import annotations

import struct

from soma_sdk import Keypair

from soma_ray.protocol.commitments import blake2b256

GENESIS_OWNER_SEED = b"soma-ray/sim/genesis-owner"
RIVAL_SEED = b"soma-ray/sim/rival"


def owner_keypair(index: int) -> Keypair:
    """Genesis owner `index`; owner 0 is the one account that owns a plain (board-less) genesis."""
    seed = GENESIS_OWNER_SEED if index == 0 else GENESIS_OWNER_SEED + b"/%d" % index
    return Keypair.from_secret_key(blake2b256(seed))


def rival_keypair(seed: int, index: int) -> Keypair:
    """Rival account `index` of the rivals seeded `seed`."""
    return Keypair.from_secret_key(blake2b256(RIVAL_SEED + struct.pack("<QQ", seed, index)))
