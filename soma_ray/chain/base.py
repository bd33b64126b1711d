"""The one async interface every part of soma-ray uses to talk to a SOMA network."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence

import numpy as np
from soma_sdk import Keypair

from soma_ray.chain.errors import ManifestCountMismatch
from soma_ray.chain.types import (
    ActiveModel,
    Coin,
    Manifest,
    ModelInfo,
    NetworkInfo,
    StakedSoma,
    Target,
    TargetPage,
    TargetStatus,
    TxResult,
)
from soma_ray.protocol.architecture import v1_architecture

MAX_PAGE = 1000  # the RPC's page-size cap (§3.4)
# The most `fetch_model` reads when its caller gives no bound: a manifest's size is a stranger's
# word, so twice a full V1 model's float32 weights (§1.4), not whatever it claims.
DEFAULT_MAX_MODEL_BYTES = 2 * v1_architecture().approx_weights_bytes()


def model_fetch_bound(manifest_size: int, max_bytes: int | None) -> int:
    """What `fetch_model` reads at most: the manifest's size, capped by the caller's bound (or the default)."""
    return min(manifest_size, DEFAULT_MAX_MODEL_BYTES if max_bytes is None else max_bytes)


class Chain(abc.ABC):
    """A SOMA network: the real one through soma-sdk, or the embedded simulation.

    Amounts are shannons. Methods taking a `signer` send a transaction and raise the typed
    `TransactionFailed` subclass named after the chain's error when it fails.
    """

    name: str = "chain"

    # -- reading the network -------------------------------------------------------------
    @abc.abstractmethod
    async def info(self) -> NetworkInfo: ...

    @abc.abstractmethod
    async def list_targets(
        self,
        status: TargetStatus | None = None,
        *,
        epoch: int | None = None,
        submitter: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> TargetPage: ...

    @abc.abstractmethod
    async def get_target(self, target_id: str) -> Target: ...

    @abc.abstractmethod
    async def _manifests(self, model_ids: Sequence[str]) -> list[Manifest]:
        """Raw manifests as the network returns them (may silently skip ids)."""

    @abc.abstractmethod
    async def active_models(self) -> list[ActiveModel]: ...

    @abc.abstractmethod
    async def get_model(self, model_id: str) -> ModelInfo: ...

    @abc.abstractmethod
    async def models_owned(self, owner: str) -> list[ModelInfo]:
        """Every model in the registry owned by `owner`, in any state (how a lost CreateModel
        answer is found out: its id derives from a digest the client never saw)."""

    @abc.abstractmethod
    async def staked_soma(self, owner: str) -> list[StakedSoma]:
        """Every StakedSoma object `owner` holds (model pools and any other)."""

    @abc.abstractmethod
    async def balance(self, address: str) -> int: ...

    @abc.abstractmethod
    async def coins(self, address: str) -> list[Coin]: ...

    @abc.abstractmethod
    async def fetch_model(self, model_id: str, *, max_bytes: int | None = None) -> bytes:
        """The model's *encrypted* weights (decrypt with its revealed key): http(s) only, at most
        the manifest's size and `max_bytes` (default `DEFAULT_MAX_MODEL_BYTES`), checked against
        the manifest's checksum."""

    @abc.abstractmethod
    async def fetch_submission_data(self, target_id: str) -> bytes:
        """A filled target's data: http(s) only, at most `max_submission_data_size` (§4.2)."""

    # -- transactions ----------------------------------------------------------------------
    @abc.abstractmethod
    async def faucet(self, address: str) -> list[Coin]: ...

    @abc.abstractmethod
    async def create_model(
        self, signer: Keypair, *, stake: int | None = None, commission_rate: int = 0
    ) -> str:
        """Create a model staked from the gas coin; returns its id."""

    @abc.abstractmethod
    async def commit_model(
        self,
        signer: Keypair,
        model_id: str,
        *,
        weights_url: str,
        encrypted_weights: bytes,
        decryption_key: str,
        embedding: Sequence[float] | np.ndarray,
    ) -> TxResult: ...

    @abc.abstractmethod
    async def reveal_model(
        self,
        signer: Keypair,
        model_id: str,
        *,
        decryption_key: str,
        embedding: Sequence[float] | np.ndarray,
    ) -> TxResult: ...

    @abc.abstractmethod
    async def add_stake_to_model(self, signer: Keypair, model_id: str, amount: int) -> TxResult: ...

    @abc.abstractmethod
    async def withdraw_stake(self, signer: Keypair, staked_soma_id: str) -> TxResult:
        """`WithdrawStake{staked_soma}`: the whole object back as a new coin (§5, protocol.staking)."""

    @abc.abstractmethod
    async def set_model_commission_rate(self, signer: Keypair, model_id: str, new_rate: int) -> TxResult:
        """`SetModelCommissionRate`: owner of an Active model; `new_rate` bps (0..10000) is staged
        and takes effect at the next epoch (§5)."""

    @abc.abstractmethod
    async def deactivate_model(self, signer: Keypair, model_id: str) -> TxResult: ...

    @abc.abstractmethod
    async def submit_data(
        self,
        signer: Keypair,
        target_id: str,
        *,
        data: bytes,
        data_url: str,
        model_id: str,
        embedding: Sequence[float] | np.ndarray,
        distance_score: float,
        loss_score: Sequence[float],
    ) -> TxResult: ...

    @abc.abstractmethod
    async def claim_rewards(self, signer: Keypair, target_id: str) -> TxResult: ...

    @abc.abstractmethod
    async def pay_coins(
        self, signer: Keypair, recipients: Sequence[str], amounts: Sequence[int]
    ) -> TxResult: ...

    @abc.abstractmethod
    async def merge_coins(self, signer: Keypair) -> TxResult: ...

    # -- time ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def advance_epoch(self) -> int:
        """Force an epoch change (simulated network and localnet only)."""

    @abc.abstractmethod
    async def wait_for_next_epoch(self, timeout: float = 120.0) -> int: ...

    async def close(self) -> None:
        return None

    # -- conveniences built on the primitives ----------------------------------------------
    async def model_manifests(self, model_ids: Sequence[str]) -> list[Manifest]:
        """Manifests in `model_ids` order; refuses a short answer (winner indices would shift)."""
        manifests = await self._manifests(model_ids)
        if len(manifests) != len(model_ids):
            raise ManifestCountMismatch(
                f"chain returned {len(manifests)} manifests for {len(model_ids)} model ids; "
                "a model is missing or not yet committed, so winner indices would not line up"
            )
        return manifests

    async def iter_targets(
        self,
        status: TargetStatus | None = None,
        *,
        epoch: int | None = None,
        submitter: str | None = None,
        page_size: int = MAX_PAGE,
    ) -> AsyncIterator[Target]:
        """Every matching target, following page tokens."""
        token: str | None = None
        while True:
            page = await self.list_targets(
                status, epoch=epoch, submitter=submitter, limit=page_size, page_token=token
            )
            for target in page.targets:
                yield target
            token = page.next_page_token
            if not token:
                return

    async def all_targets(
        self, status: TargetStatus | None = None, *, epoch: int | None = None, submitter: str | None = None
    ) -> list[Target]:
        return [t async for t in self.iter_targets(status, epoch=epoch, submitter=submitter)]
