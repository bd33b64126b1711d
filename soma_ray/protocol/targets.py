"""How a target's embedding is drawn from its seed (protocol.md §3.2)."""

from __future__ import annotations

import numpy as np

ID_SEED_BYTES = 8  # make_target_seed keeps the first 8 bytes of the hash


def target_embedding(seed: int, dim: int) -> np.ndarray:
    """`deterministic_embedding`: raw N(0, 1) from arrgen, not normalised, float32."""
    import arrgen  # a native extension: loaded only where targets are drawn

    return np.asarray(arrgen.normal_array(seed, [dim], 0.0, 1.0), dtype=np.float32)


def epoch_start_seed(target_id: str) -> int:
    """The seed of a target created at an epoch change, read from its id: both come from the same
    creation number there, so `seed = u64_le(id[0..8])` (§3.2). Spawn-on-fill and genesis targets
    use other numbers: check a result against the target's embedding before trusting it."""
    raw = bytes.fromhex(target_id.removeprefix("0x"))
    if len(raw) < ID_SEED_BYTES:
        raise ValueError(f"target id {target_id!r} is shorter than {ID_SEED_BYTES} bytes: not a SOMA object id")
    return int.from_bytes(raw[:ID_SEED_BYTES], "little")
