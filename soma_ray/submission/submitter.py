"""One small interface for "submit this hit": `DriverSubmitter` sends it to the wallet's driver
actor (the one process that signs); `DirectSubmitter` signs in-process (tests, one-off runs)."""

from __future__ import annotations

from typing import Any, Protocol

from soma_sdk import Keypair

from soma_ray.chain.base import Chain
from soma_ray.chain.types import TxResult
from soma_ray.protocol.commitments import commitment
from soma_ray.scoring.hits import Hit
from soma_ray.storage.base import BlobStore


class Submitter(Protocol):
    async def submit(self, hit: Hit, data: bytes) -> TxResult | None:
        """The transaction, or None when this target already has a submission from us."""
        ...


class DriverSubmitter:
    """Hand hits to the driver actor; it uploads, verifies, records, sends — once per target."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def submit(self, hit: Hit, data: bytes) -> TxResult | None:
        from soma_ray.driver.remote import actor_errors

        with actor_errors():  # TargetNotOpen, DriverRefused … as themselves, not as a remote traceback
            result: TxResult | None = await self.handle.submit.remote(
                hit.target_id, data, hit.model_id, [float(x) for x in hit.embedding], hit.distance, hit.loss
            )
        return result


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
