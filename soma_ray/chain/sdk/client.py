"""`SdkChain`: the `Chain` interface over `soma_sdk.SomaClient` (testnet, localnet, explicit URLs).

This is the only module that calls the SDK's client. Everything it returns is converted to the
domain types in `soma_ray.chain.types` (see `soma_ray.chain.sdk.convert`) and every SDK failure
is re-raised as a typed `ChainError` (see `soma_ray.chain.sdk.errors.parse_sdk_error`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from soma_sdk import Keypair, SomaClient

from soma_ray.chain.base import MAX_PAGE, Chain, model_fetch_bound
from soma_ray.chain.errors import ChainError, ChainUnavailable, NotSupported, ObjectNotFound
from soma_ray.chain.sdk.convert import (
    _get,
    _norm_id,
    active_model_from_sdk,
    coin_from_sdk_object,
    manifest_from_sdk,
    model_ids_in_state,
    model_info_from_state,
    network_info_from_sdk,
    shannons_from_soma,
    soma_for_shannons,
    staked_from_sdk_object,
    staking_pool_models,
    target_from_sdk,
    target_page_from_sdk,
    tx_result_from_effects,
)
from soma_ray.chain.sdk.errors import _one_line, parse_sdk_error
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
from soma_ray.protocol.commitments import canonical_address, commitment
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.storage import StorageError, fetch_url
from soma_ray.storage.errors import redact_url
from soma_ray.storage.fetcher import CHAIN_POLICY, RefusedURLError, TooLargeError, UnsupportedURLError

if TYPE_CHECKING:  # shapes from the SDK's .pyi; not importable at runtime (SimpleNamespace there)
    from soma_sdk import ListTargetsResponse as SdkTargetPage

T = TypeVar("T")

# Endpoints of the SDK's chain presets (python-sdk/src/lib.rs `new`). We resolve them here rather
# than passing `chain=` so that the localnet preset does not also require a scoring service (the
# scorer is not part of `Chain`) and so that faucet/admin are connected only when first used.
@dataclass(frozen=True)
class Endpoints:
    rpc_url: str
    faucet_url: str | None = None
    admin_url: str | None = None
    scoring_url: str | None = None


PRESETS: dict[str, Endpoints] = {
    "testnet": Endpoints(
        rpc_url="https://fullnode.testnet.soma.org",
        faucet_url="https://faucet.testnet.soma.org",
    ),
    "localnet": Endpoints(
        rpc_url="http://127.0.0.1:9000",
        faucet_url="http://127.0.0.1:9123",
        admin_url="http://127.0.0.1:9125",
    ),
}

# The three status filters whose results are disjoint and together cover every live target
# (claimable = expired | filled-past-audit, claimed targets are deleted): what `status=None` lists.
_ALL_STATUS_PHASES = (TargetStatus.OPEN, TargetStatus.FILLED, TargetStatus.EXPIRED)


def resolve_endpoints(
    *,
    chain: str | None = None,
    rpc_url: str | None = None,
    faucet_url: str | None = None,
    admin_url: str | None = None,
    scoring_url: str | None = None,
) -> tuple[str, Endpoints]:
    """(name, endpoints) for a preset (`testnet`, `localnet`) or an explicit `rpc_url`.

    With a preset, `faucet_url`/`admin_url` override the preset's.
    """
    if chain is not None:
        preset = PRESETS.get(chain)
        if preset is None:
            raise ChainError(
                f"unknown chain {chain!r}: use chain='testnet', chain='localnet' or rpc_url=..."
            )
        if rpc_url is not None:
            raise ChainError(f"give either chain={chain!r} or rpc_url, not both")
        return chain, Endpoints(
            rpc_url=preset.rpc_url,
            faucet_url=faucet_url or preset.faucet_url,
            admin_url=admin_url or preset.admin_url,
            scoring_url=scoring_url,
        )
    if not rpc_url:
        raise ChainError("no network given: pass chain='testnet', chain='localnet' or rpc_url=...")
    return rpc_url, Endpoints(
        rpc_url=rpc_url, faucet_url=faucet_url, admin_url=admin_url, scoring_url=scoring_url
    )


async def _open_client(rpc_url: str, what: str, **extra: str) -> SomaClient:
    """`await SomaClient(...)`, with failures turned into one-line `ChainError`s."""
    url = next(iter(extra.values()), rpc_url)
    try:
        return await SomaClient(rpc_url, **extra)
    except (RuntimeError, ValueError) as exc:
        error = parse_sdk_error(exc, endpoint=f"the SOMA {what} at {url}")
        if type(error) is ChainError:
            error = ChainError(f"cannot open the SOMA {what} at {url}: {error}")
        raise error from exc


class SdkChain(Chain):
    """A real SOMA network through soma-sdk. Create with `await SdkChain.connect(...)`.

    One instance per wallet process: the SDK tracks in-flight coins per client object, so
    concurrent submissions from one address must share this object.
    """

    def __init__(self, client: SomaClient, *, name: str, endpoints: Endpoints) -> None:
        self.client = client
        self.name = name
        self.endpoints = endpoints
        self._faucet_client: SomaClient | None = None
        self._admin_client: SomaClient | None = None
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(
        cls,
        *,
        chain: str | None = None,
        rpc_url: str | None = None,
        faucet_url: str | None = None,
        scoring_url: str | None = None,
        admin_url: str | None = None,
    ) -> SdkChain:
        """Connect to a preset (`"testnet"`, `"localnet"`) or an explicit `rpc_url`.

        The RPC is probed at once (the SDK connects lazily), so an unreachable network raises
        `ChainUnavailable` here. Faucet and admin clients are opened on first use. `scoring_url`
        is only recorded (`endpoints.scoring_url`): scoring is not part of `Chain`.
        """
        name, endpoints = resolve_endpoints(
            chain=chain,
            rpc_url=rpc_url,
            faucet_url=faucet_url,
            admin_url=admin_url,
            scoring_url=scoring_url,
        )
        client = await _open_client(endpoints.rpc_url, "RPC")
        connected = cls(client, name=name, endpoints=endpoints)
        try:
            await client.get_protocol_version()
        except (RuntimeError, ValueError) as exc:
            error = parse_sdk_error(exc, endpoint=connected._rpc_desc)
            if isinstance(error, ChainUnavailable) and chain == "localnet":
                error = ChainUnavailable(f"{error} (start one with `soma start localnet`)")
            raise error from exc
        return connected

    # -- plumbing --------------------------------------------------------------------------
    @property
    def _rpc_desc(self) -> str:
        return f"the SOMA RPC at {self.endpoints.rpc_url}"

    async def _call(self, fn: Callable[[], Awaitable[T]], endpoint: str | None = None) -> T:
        """Run one SDK call; SDK exceptions become typed `ChainError`s."""
        try:
            return await fn()
        except ChainError:
            raise
        except (RuntimeError, ValueError) as exc:
            raise parse_sdk_error(exc, endpoint=endpoint or self._rpc_desc) from exc

    async def _faucet(self) -> SomaClient:
        url = self.endpoints.faucet_url
        if url is None:
            raise NotSupported(
                f"no faucet for {self.name}: "
                "connect with chain='localnet' or chain='testnet', or pass faucet_url=..."
            )
        async with self._lock:
            if self._faucet_client is None:
                self._faucet_client = await _open_client(
                    self.endpoints.rpc_url, "faucet", faucet_url=url
                )
            return self._faucet_client

    async def _admin(self) -> SomaClient:
        url = self.endpoints.admin_url
        if url is None:
            raise NotSupported(
                f"advance_epoch needs an admin endpoint, which only a localnet has "
                f"({self.name} has none): connect with chain='localnet' or admin_url=..."
            )
        async with self._lock:
            if self._admin_client is None:
                self._admin_client = await _open_client(
                    self.endpoints.rpc_url, "admin service", admin_url=url
                )
            return self._admin_client

    # -- the node and its services -------------------------------------------------------
    async def api_version(self) -> str:
        """The node's server version, after soma-sdk's own check that the node speaks this
        client's API (a typed `ChainError` when it does not)."""
        version = await self._call(self.client.get_server_version)
        await self._call(self.client.check_api_version)
        return str(version)

    async def scoring_health(self) -> bool:
        """Whether the scoring service at `scoring_url` answers that it is healthy."""
        url = self.endpoints.scoring_url
        if url is None:
            raise NotSupported(f"no scoring service for {self.name}: set chain.scoring_url")
        client = await _open_client(self.endpoints.rpc_url, "scoring service", scoring_url=url)
        return bool(await self._call(client.scoring_health, endpoint=f"the SOMA scoring service at {url}"))

    # -- reading the network ---------------------------------------------------------------
    async def info(self) -> NetworkInfo:
        state = await self._call(self.client.get_latest_system_state)
        version: int | None = None
        if _get(state, "protocol_version") is None:
            version = await self._call(self.client.get_protocol_version)
        return network_info_from_sdk(state, chain=self.name, protocol_version=version)

    async def _list_one(
        self,
        status: TargetStatus,
        *,
        epoch: int | None,
        submitter: str | None,
        limit: int,
        page_token: str | None,
        read_mask: str | None = None,
    ) -> SdkTargetPage:
        return await self._call(
            lambda: self.client.list_targets(
                status=str(status),  # the SDK takes the plain string
                epoch=epoch,
                limit=limit,
                read_mask=read_mask,
                submitter=submitter,
                page_token=page_token,
            )
        )

    async def list_targets(
        self,
        status: TargetStatus | None = None,
        *,
        epoch: int | None = None,
        submitter: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> TargetPage:
        """One page of targets. `status=None` lists every live target (open, filled, expired),
        walking the three filters in turn behind one opaque page token."""
        limit = max(1, min(int(limit), MAX_PAGE))
        if status is not None:
            raw = await self._list_one(
                status, epoch=epoch, submitter=submitter, limit=limit, page_token=page_token
            )
            return target_page_from_sdk(raw)
        phase, inner = _ALL_STATUS_PHASES[0], None
        if page_token:
            text, _, rest = page_token.partition(":")
            if text not in _ALL_STATUS_PHASES:
                raise ChainError(f"invalid page token {page_token!r} for an unfiltered listing")
            phase, inner = TargetStatus(text), rest or None
        page = target_page_from_sdk(
            await self._list_one(
                phase, epoch=epoch, submitter=submitter, limit=limit, page_token=inner
            )
        )
        if page.next_page_token:
            token: str | None = f"{phase}:{page.next_page_token}"
        else:
            following = _ALL_STATUS_PHASES[_ALL_STATUS_PHASES.index(phase) + 1 :]
            token = f"{following[0]}:" if following else None
        return TargetPage(targets=page.targets, next_page_token=token)

    async def get_target(self, target_id: str) -> Target:
        """Finds the target by listing (the SDK has no get-target call): ids only first, then
        the full page that holds it. Claimed targets are deleted and raise `ObjectNotFound`."""
        wanted = _norm_id(target_id)
        for phase in _ALL_STATUS_PHASES:
            token: str | None = None
            while True:
                ids = await self._list_one(
                    phase, epoch=None, submitter=None, limit=MAX_PAGE, page_token=token,
                    read_mask="id",
                )
                if any(_norm_id(t.id) == wanted for t in ids.targets):
                    found = await self._scan_full(phase, token, wanted)
                    if found is not None:
                        return found
                token = ids.next_page_token or None
                if token is None:
                    break
        raise ObjectNotFound(f"target {target_id} not found (claimed targets are deleted)")

    async def _scan_full(self, phase: TargetStatus, token: str | None, wanted: str) -> Target | None:
        for _ in range(MAX_PAGE):  # full pages may be cut short by the RPC's 512 KiB cap
            page = await self._list_one(
                phase, epoch=None, submitter=None, limit=MAX_PAGE, page_token=token
            )
            for target in page.targets:
                if _norm_id(target.id) == wanted:
                    return target_from_sdk(target)
            token = page.next_page_token or None
            if token is None:
                return None
        return None

    async def _manifests(self, model_ids: Sequence[str]) -> list[Manifest]:
        manifests = await self._call(lambda: self.client.get_model_manifests(list(model_ids)))
        return [manifest_from_sdk(m) for m in manifests]

    async def active_models(self) -> list[ActiveModel]:
        models = await self._call(self.client.get_active_models)
        return [active_model_from_sdk(m) for m in models]

    async def get_model(self, model_id: str) -> ModelInfo:
        state = await self._call(self.client.get_latest_system_state)
        return model_info_from_state(state, model_id)

    async def models_owned(self, owner: str) -> list[ModelInfo]:
        state = await self._call(self.client.get_latest_system_state)
        wanted = canonical_address(owner)
        models = [model_info_from_state(state, model_id) for model_id in model_ids_in_state(state)]
        return sorted((m for m in models if canonical_address(m.owner) == wanted), key=lambda m: m.model_id)

    async def balance(self, address: str) -> int:
        soma = await self._call(lambda: self.client.get_balance(address))
        return shannons_from_soma(float(soma))

    async def coins(self, address: str) -> list[Coin]:
        objects = await self._call(
            lambda: self.client.list_owned_objects(address, object_type="coin")
        )
        return [coin_from_sdk_object(obj, address) for obj in objects]

    async def staked_soma(self, owner: str) -> list[StakedSoma]:
        objects = await self._call(lambda: self.client.list_owned_objects(owner, object_type="staked_soma"))
        if not objects:
            return []
        pools = staking_pool_models(await self._call(self.client.get_latest_system_state))
        return [staked_from_sdk_object(obj, owner, pools) for obj in objects]

    # The SDK's own fetch_model / fetch_submission_data read whatever a manifest's URL serves, of
    # any size, into memory: the URLs and sizes are strangers' (§13), so these fetch with our
    # bounded fetcher instead: http(s) only, no cloud metadata hosts, a byte cap, the checksum.
    async def fetch_model(self, model_id: str, *, max_bytes: int | None = None) -> bytes:
        (manifest,) = await self._manifests([model_id])
        bound = model_fetch_bound(manifest.size, max_bytes)
        data = await self._fetch(manifest.url, bound, f"/model/{model_id}")
        if commitment(data) != manifest.checksum:
            raise ChainError(f"the weights of model {model_id} from {redact_url(manifest.url)} do not match their "
                             "on-chain checksum; the model's owner serves other bytes than committed")
        return data

    async def fetch_submission_data(self, target_id: str) -> bytes:
        target = await self.get_target(target_id)
        if not target.data_url:
            raise ObjectNotFound(f"target {target_id} has no submitted data")
        return await self._fetch(target.data_url, ProtocolParams.max_submission_data_size, f"/data/{target_id}")

    async def _fetch(self, url: str, max_bytes: int, proxy_path: str) -> bytes:
        """`url` as the chain names it; when it cannot be reached, the RPC's own HTTP copy (the
        SDK's fallback, §13: the user's endpoint, same bound). A refused or oversized URL is final."""
        try:
            return await asyncio.to_thread(fetch_url, url, max_bytes=max_bytes, policy=CHAIN_POLICY)
        except (UnsupportedURLError, RefusedURLError, TooLargeError):
            raise
        except StorageError as direct:
            proxy = self.endpoints.rpc_url.rstrip("/") + proxy_path
            try:
                return await asyncio.to_thread(fetch_url, proxy, max_bytes=max_bytes, policy=CHAIN_POLICY)
            except StorageError as err:
                raise ChainUnavailable(f"cannot download {redact_url(url)} ({direct}) nor its copy at {redact_url(proxy)} "
                                       f"({err}); retry later or ask the model's owner to fix the URL") from err

    # -- transactions ----------------------------------------------------------------------
    async def faucet(self, address: str) -> list[Coin]:
        client = await self._faucet()
        where = f"the SOMA faucet at {self.endpoints.faucet_url}"
        response = await self._call(lambda: client.request_faucet(address), where)
        status = str(_get(response, "status", ""))
        if status.lower() != "success":
            raise ChainError(f"faucet refused {address}: {_one_line(status)}")
        owner = canonical_address(address)
        return [Coin(id=str(c.id), owner=owner, balance=int(c.amount)) for c in response.coins_sent]

    async def create_model(
        self, signer: Keypair, *, stake: int | None = None, commission_rate: int = 0
    ) -> str:
        stake_soma = None if stake is None else soma_for_shannons(stake)
        model_id = await self._call(
            lambda: self.client.create_model(signer, commission_rate, stake_amount=stake_soma)
        )
        return str(model_id)

    async def commit_model(
        self,
        signer: Keypair,
        model_id: str,
        *,
        weights_url: str,
        encrypted_weights: bytes,
        decryption_key: str,
        embedding: Sequence[float] | np.ndarray,
    ) -> TxResult:
        effects = await self._call(
            lambda: self.client.commit_model(
                signer,
                model_id,
                weights_url,
                bytes(encrypted_weights),
                decryption_key,
                _f32_list(embedding),
            )
        )
        return tx_result_from_effects(effects)

    async def reveal_model(
        self,
        signer: Keypair,
        model_id: str,
        *,
        decryption_key: str,
        embedding: Sequence[float] | np.ndarray,
    ) -> TxResult:
        effects = await self._call(
            lambda: self.client.reveal_model(
                signer, model_id, decryption_key, _f32_list(embedding)
            )
        )
        return tx_result_from_effects(effects)

    async def add_stake_to_model(self, signer: Keypair, model_id: str, amount: int) -> TxResult:
        soma = soma_for_shannons(amount)
        effects = await self._call(
            lambda: self.client.add_stake_to_model(signer, model_id, amount=soma)
        )
        return tx_result_from_effects(effects)

    async def withdraw_stake(self, signer: Keypair, staked_soma_id: str) -> TxResult:
        effects = await self._call(lambda: self.client.withdraw_stake(signer, staked_soma_id))
        return tx_result_from_effects(effects)

    async def set_model_commission_rate(self, signer: Keypair, model_id: str, new_rate: int) -> TxResult:
        effects = await self._call(lambda: self.client.set_model_commission_rate(signer, model_id, new_rate))
        return tx_result_from_effects(effects)

    async def deactivate_model(self, signer: Keypair, model_id: str) -> TxResult:
        effects = await self._call(lambda: self.client.deactivate_model(signer, model_id))
        return tx_result_from_effects(effects)

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
    ) -> TxResult:
        effects = await self._call(
            lambda: self.client.submit_data(
                signer,
                target_id,
                bytes(data),
                data_url,
                model_id,
                _f32_list(embedding),
                float(np.float32(distance_score)),
                _f32_list(loss_score),
            )
        )
        return tx_result_from_effects(effects)

    async def claim_rewards(self, signer: Keypair, target_id: str) -> TxResult:
        effects = await self._call(lambda: self.client.claim_rewards(signer, target_id))
        return tx_result_from_effects(effects)

    async def pay_coins(
        self, signer: Keypair, recipients: Sequence[str], amounts: Sequence[int]
    ) -> TxResult:
        if len(recipients) != len(amounts):
            raise ChainError(
                f"pay_coins: {len(recipients)} recipients but {len(amounts)} amounts"
            )
        soma = [soma_for_shannons(int(a)) for a in amounts]
        effects = await self._call(
            lambda: self.client.pay_coins(signer, list(recipients), soma)
        )
        return tx_result_from_effects(effects)

    async def merge_coins(self, signer: Keypair) -> TxResult:
        """Merge the signer's coins (up to 256 per call). With 0 or 1 coins there is nothing to
        merge and no transaction is sent: returns `TxResult(digest="", ok=True, fee=0)`."""
        try:
            effects = await self._call(lambda: self.client.merge_coins(signer))
        except ChainError as exc:
            if "nothing to merge" in str(exc).lower():
                return TxResult(digest="", ok=True, fee=0)
            raise
        return tx_result_from_effects(effects)

    # -- time ------------------------------------------------------------------------------
    async def advance_epoch(self) -> int:
        client = await self._admin()
        where = f"the SOMA admin service at {self.endpoints.admin_url}"
        return int(await self._call(client.advance_epoch, where))

    async def wait_for_next_epoch(self, timeout: float = 120.0) -> int:
        return int(await self._call(lambda: self.client.wait_for_next_epoch(timeout=timeout)))


def _f32_list(values: Sequence[float] | np.ndarray) -> list[float]:
    """Values as exact float32 numbers in Python floats (the SDK takes `Vec<f32>`)."""
    array = np.asarray(values, dtype=np.float32).reshape(-1)
    return [float(v) for v in array.tolist()]
