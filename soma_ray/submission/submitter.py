"""One small interface for "submit this hit": today it signs directly; the driver actor of a
later issue implements the same `submit` and takes over the wallet."""

from __future__ import annotations

from typing import Protocol

from soma_sdk import Keypair

from soma_ray.chain.base import Chain
from soma_ray.chain.types import TxResult
from soma_ray.protocol.commitments import commitment
from soma_ray.scoring.hits import Hit
from soma_ray.storage.base import BlobStore


class Submitter(Protocol):
    async def submit(self, hit: Hit, data: bytes) -> TxResult: ...


class DirectSubmitter:
    """Upload the exact bytes (public-read), then SubmitData with the winner's numbers (§4.1)."""

    def __init__(self, chain: Chain, signer: Keypair, store: BlobStore) -> None:
        self.chain, self.signer, self.store = chain, signer, store

    async def submit(self, hit: Hit, data: bytes) -> TxResult:
        url = self.store.put(f"data/{commitment(data)}.bin", data)  # content-addressed: re-uploads are harmless
        return await self.chain.submit_data(
            self.signer,
            hit.target_id,
            data=data,
            data_url=url,
            model_id=hit.model_id,
            embedding=hit.embedding,
            distance_score=hit.distance,
            loss_score=[hit.loss],  # the scorer's winner-only, length-1 list (§1.8 compares shapes)
        )
