"""`SimChain`: the embedded simulated network behind the async `Chain` interface."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from soma_sdk import Keypair

from soma_ray.chain import errors
from soma_ray.chain.base import MAX_PAGE, Chain, model_fetch_bound
from soma_ray.chain.sim import coins as coin_rules
from soma_ray.chain.sim import epoch as epoch_rules
from soma_ray.chain.sim import models as model_rules
from soma_ray.chain.sim import submissions
from soma_ray.chain.sim.execute import Body, Effects, execute_signed, gas_too_small, run_body
from soma_ray.chain.sim.objects import SYSTEM_STATE_ID, pool_id
from soma_ray.chain.sim.settings import RivalSettings, SimSettings
from soma_ray.chain.sim.store import (
    TxContext,
    begin_tx,
    coin_rows,
    connect,
    delete_coin,
    f32_array,
    finish_tx,
    get_coin,
    immediate,
    load_state,
    migrate,
    mint_coin,
    save_state,
    set_coin_balance,
)
from soma_ray.chain.sim.targets import status_clause, target_from_row
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
from soma_ray.errors import WaitTimeout
from soma_ray.protocol.commitments import blake2b256, canonical_address, commitment
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.protocol.wire.transaction import TransactionData
from soma_ray.storage import StorageError, fetch_url
from soma_ray.storage.fetcher import RefusedURLError, TooLargeError, UnsupportedURLError

T = TypeVar("T")
SYSTEM = "0x0"  # sender of system transactions (genesis, faucet, epoch change)
MAX_MERGE = 256  # coins merged per call, as the SDK's merge_coins
# The sim's own transactions that take the system state as an input (as the chain's kinds do).
SYSTEM_STATE_KINDS = frozenset(
    {"CreateModel", "CommitModel", "RevealModel", "AddStakeToModel", "DeactivateModel", "SubmitData", "ClaimRewards",
     "SetModelCommissionRate", "WithdrawStake"}
)


class SimChain(Chain):
    """A protocol-v5 network in one SQLite file, shared safely by several processes."""

    name = "sim"

    def __init__(self, settings: SimSettings | None = None) -> None:
        self.settings = settings or SimSettings()
        self.db_path: Path = self.settings.db_path
        self._ensure_genesis()

    # -- plumbing ------------------------------------------------------------------------------
    def _ensure_genesis(self) -> None:
        self.settings.path.mkdir(parents=True, exist_ok=True)
        conn = connect(self.db_path)
        try:
            migrate(conn)
            with immediate(conn):  # two processes racing to create it: one writes genesis
                if conn.execute("SELECT 1 FROM system").fetchone() is None:
                    # The chain id (and so every object id) follows from the genesis settings.
                    chain_id = blake2b256(self.settings.genesis_identity().encode()).hex()[:16]
                    save_state(conn, {"chain_id": chain_id})
                    ctx = begin_tx(conn, SYSTEM, "Genesis", 0)
                    from soma_ray.chain.sim.genesis import write_genesis  # torch: only to create a network
                    write_genesis(conn, self.settings, ctx)
                    finish_tx(conn, ctx, ok=True, fee=0, error=None)
        finally:
            conn.close()

    def _read(self, fn: Callable[[sqlite3.Connection, dict[str, Any]], T]) -> T:
        conn = connect(self.db_path)
        try:
            return fn(conn, load_state(conn))
        finally:
            conn.close()

    def _system_tx(self, kind: str, fn: Callable[[sqlite3.Connection, TxContext, dict[str, Any]], T]) -> T:
        conn = connect(self.db_path)
        try:
            with immediate(conn):
                state = load_state(conn)
                ctx = begin_tx(conn, SYSTEM, kind, state["epoch"])
                if kind == "ChangeEpoch":
                    ctx.touch(SYSTEM_STATE_ID)  # the epoch change writes the system state
                result = fn(conn, ctx, state)
                save_state(conn, state)
                finish_tx(conn, ctx, ok=True, fee=0, error=None)
                return result
        finally:
            conn.close()

    def _execute(self, signer: Keypair, kind: str, body: Body[T]) -> tuple[T, TxResult]:
        """Run a user transaction: body, then fees; on failure undo the body but keep the base fee.

        The sim's own API picks the gas coin itself (the richest coin of the signer)."""
        sender = canonical_address(signer.address())
        conn = connect(self.db_path)
        try:
            with immediate(conn):
                state = load_state(conn)
                params = ProtocolParams.from_dict(state["params"])
                ctx = begin_tx(conn, sender, kind, state["epoch"])
                coins = coin_rows(conn, sender)
                failure: errors.TransactionFailed | None
                result: T | None = None
                if not coins:
                    failure = gas_too_small(conn, ctx, state, None)
                else:
                    gas = coins[0].id
                    ctx.snapshot(gas)
                    if kind in SYSTEM_STATE_KINDS:  # a shared input, written even if the body fails
                        ctx.snapshot(SYSTEM_STATE_ID)
                    if coins[0].balance < params.base_fee:
                        failure = gas_too_small(conn, ctx, state, coins[0])
                    else:
                        result, failure = run_body(conn, ctx, state, params, gas, body)
            if failure is not None:
                raise failure
            tx = TxResult(
                digest=ctx.digest_b58,
                ok=True,
                fee=ctx.fee.total,
                created=list(ctx.created),
                mutated=list(ctx.mutated),
                deleted=list(ctx.deleted),
            )
            return result, tx  # type: ignore[return-value]
        finally:
            conn.close()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    # -- reading -------------------------------------------------------------------------------
    async def read_state(self) -> dict[str, Any]:
        """The network's system state as stored (a copy: genesis settings, counters, pool)."""
        return await self._call(self._read, lambda conn, s: s)

    async def tx_count(self, sender: str, kind: str, epoch: int) -> int:
        """How many transactions of `kind` from `sender` succeeded in `epoch`."""

        def read(conn: sqlite3.Connection, state: dict[str, Any]) -> int:
            row = conn.execute(
                "SELECT COUNT(*) AS n FROM txs WHERE sender = ? AND kind = ? AND epoch = ? AND ok = 1",
                (canonical_address(sender), kind, epoch),
            ).fetchone()
            return int(row["n"])

        return await self._call(self._read, read)

    async def info(self) -> NetworkInfo:
        return await self._call(self._read, lambda conn, s: network_info(s))

    async def list_targets(
        self,
        status: TargetStatus | None = None,
        *,
        epoch: int | None = None,
        submitter: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> TargetPage:
        limit = max(1, min(limit, MAX_PAGE))

        def read(conn: sqlite3.Connection, state: dict[str, Any]) -> TargetPage:
            where, args = status_clause(status, state["epoch"])
            if epoch is not None:
                where, args = f"({where}) AND generation_epoch = ?", [*args, epoch]
            if submitter is not None:
                where, args = f"({where}) AND submitter = ?", [*args, canonical_address(submitter)]
            after = int(page_token, 16) if page_token else 0
            rows = conn.execute(
                f"SELECT * FROM targets WHERE ({where}) AND seq > ? ORDER BY seq LIMIT ?",
                [*args, after, limit + 1],
            ).fetchall()
            token = format(rows[limit - 1]["seq"], "x") if len(rows) > limit else None
            return TargetPage([target_from_row(r, state["epoch"]) for r in rows[:limit]], token)

        return await self._call(self._read, read)

    async def get_target(self, target_id: str) -> Target:
        def read(conn: sqlite3.Connection, state: dict[str, Any]) -> Target:
            row = conn.execute("SELECT * FROM targets WHERE id = ?", (target_id,)).fetchone()
            if row is None:
                raise errors.ObjectNotFound(f"target {target_id} not found (claimed targets are deleted)")
            return target_from_row(row, state["epoch"])

        return await self._call(self._read, read)

    async def _manifests(self, model_ids: Sequence[str]) -> list[Manifest]:
        def read(conn: sqlite3.Connection, state: dict[str, Any]) -> list[Manifest]:
            found = []
            for model_id in model_ids:
                info = model_info(conn, model_id)
                if info is not None and info.manifest is not None:
                    found.append(info.manifest)  # like the chain, unknown/created ids are skipped
            return found

        return await self._call(self._read, read)

    async def active_models(self) -> list[ActiveModel]:
        def read(conn: sqlite3.Connection, state: dict[str, Any]) -> list[ActiveModel]:
            rows = conn.execute("SELECT * FROM models WHERE status = 'active' ORDER BY id").fetchall()
            return [
                ActiveModel(
                    model_id=r["id"],
                    owner=r["owner"],
                    embedding=f32_array(r["embedding"]),
                    stake=int(r["stake"]),
                    commission_rate=int(r["commission_rate"]),
                    next_epoch_commission_rate=int(r["next_commission_rate"]),
                    has_pending_update=r["pending_update"] is not None,
                )
                for r in rows
            ]

        return await self._call(self._read, read)

    async def get_model(self, model_id: str) -> ModelInfo:
        def read(conn: sqlite3.Connection, state: dict[str, Any]) -> ModelInfo:
            info = model_info(conn, model_id)
            if info is None:
                raise errors.ObjectNotFound(f"model {model_id} not found")
            return info

        return await self._call(self._read, read)

    async def models_owned(self, owner: str) -> list[ModelInfo]:
        wanted = canonical_address(owner)

        def read(conn: sqlite3.Connection, state: dict[str, Any]) -> list[ModelInfo]:
            rows = conn.execute("SELECT id FROM models WHERE owner = ? ORDER BY id", (wanted,)).fetchall()
            return [m for m in (model_info(conn, r["id"]) for r in rows) if m is not None]

        return await self._call(self._read, read)

    async def staked_soma(self, owner: str) -> list[StakedSoma]:
        wanted = canonical_address(owner)

        def read(conn: sqlite3.Connection, state: dict[str, Any]) -> list[StakedSoma]:
            rows = conn.execute("SELECT * FROM staked WHERE owner = ? ORDER BY id", (wanted,)).fetchall()
            return [
                StakedSoma(
                    id=r["id"], owner=r["owner"], pool_id=pool_id(r["model_id"]), model_id=r["model_id"],
                    principal=int(r["amount"]), stake_activation_epoch=int(r["stake_epoch"]),
                )
                for r in rows
            ]

        return await self._call(self._read, read)

    async def balance(self, address: str) -> int:
        return sum(c.balance for c in await self.coins(address))

    async def coins(self, address: str) -> list[Coin]:
        return await self._call(self._read, lambda conn, s: coin_rows(conn, canonical_address(address)))

    async def fetch_model(self, model_id: str, *, max_bytes: int | None = None) -> bytes:
        manifest = (await self.model_manifests([model_id]))[0]
        bound = model_fetch_bound(manifest.size, max_bytes)
        return await self._call(self._download, manifest.url, manifest.checksum, bound)

    async def fetch_submission_data(self, target_id: str) -> bytes:
        def read(conn: sqlite3.Connection, state: dict[str, Any]) -> tuple[str, str]:
            row = conn.execute(
                "SELECT data_url, data_checksum FROM targets WHERE id = ?", (target_id,)
            ).fetchone()
            if row is None or row["data_url"] is None:
                raise errors.ObjectNotFound(f"target {target_id} has no submitted data")
            return str(row["data_url"]), str(row["data_checksum"])

        url, checksum = await self._call(self._read, read)
        return await self._call(self._download, url, checksum, ProtocolParams.max_submission_data_size)

    def _download(self, url: str, checksum: str, max_bytes: int) -> bytes:
        """Fetch by URL (http(s) only, at most `max_bytes`: chain data is untrusted); for blobs
        the network serves itself, fall back to the file in its own blob dir (the "proxy")."""

        try:
            data = fetch_url(url, max_bytes=max_bytes)
        except StorageError as err:
            if isinstance(err, (UnsupportedURLError, RefusedURLError, TooLargeError)):
                raise
            base = self._read(lambda conn, s: str(s["blob_url"]))
            local = (self.settings.blob_dir / url.removeprefix(base + "/")).resolve()
            if (
                not url.startswith(base + "/")
                or not local.is_relative_to(self.settings.blob_dir.resolve())
                or not local.is_file()
                or local.stat().st_size > max_bytes
            ):
                raise
            data = local.read_bytes()
        if commitment(data) != checksum:
            raise errors.ChainError(f"download from {url} does not match its on-chain checksum")
        return data

    # -- transactions --------------------------------------------------------------------------
    async def faucet(self, address: str) -> list[Coin]:
        def give(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any]) -> list[Coin]:
            owner = canonical_address(address)
            coin_id = mint_coin(conn, ctx, owner, int(state["faucet_amount"]))
            return [Coin(id=coin_id, owner=owner, balance=int(state["faucet_amount"]))]

        return await self._call(self._system_tx, "Faucet", give)

    async def create_model(
        self,
        signer: Keypair,
        *,
        stake: int | None = None,
        commission_rate: int = 0,
        architecture_version: int | None = None,
    ) -> str:
        def body(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], p: ProtocolParams, gas: str) -> str:
            return model_rules.create_model(
                conn,
                ctx,
                state,
                p,
                gas,
                stake=p.model_min_stake if stake is None else stake,
                commission_rate=commission_rate,
                architecture_version=(
                    p.model_architecture_version if architecture_version is None else architecture_version
                ),
            )

        model_id, _ = await self._call(self._execute, signer, "CreateModel", body)
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
        def body(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], p: ProtocolParams, gas: str) -> None:
            model_rules.commit_model(
                conn,
                ctx,
                state,
                model_id=model_id,
                weights_url=weights_url,
                encrypted_weights=encrypted_weights,
                decryption_key=decryption_key,
                embedding=embedding,
            )

        return (await self._call(self._execute, signer, "CommitModel", body))[1]

    async def reveal_model(
        self,
        signer: Keypair,
        model_id: str,
        *,
        decryption_key: str,
        embedding: Sequence[float] | np.ndarray,
    ) -> TxResult:
        def body(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], p: ProtocolParams, gas: str) -> None:
            model_rules.reveal_model(
                conn, ctx, state, model_id=model_id, decryption_key=decryption_key, embedding=embedding
            )

        return (await self._call(self._execute, signer, "RevealModel", body))[1]

    async def add_stake_to_model(self, signer: Keypair, model_id: str, amount: int) -> TxResult:
        def body(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], p: ProtocolParams, gas: str) -> None:
            model_rules.add_stake(conn, ctx, state, p, gas, model_id=model_id, amount=amount)

        return (await self._call(self._execute, signer, "AddStakeToModel", body))[1]

    async def withdraw_stake(self, signer: Keypair, staked_soma_id: str) -> TxResult:
        sender = canonical_address(signer.address())

        def check(conn: sqlite3.Connection, state: dict[str, Any]) -> None:
            # What the node refuses before executing (the SDK fetches the object first): nothing charged.
            row = conn.execute("SELECT owner FROM staked WHERE id = ?", (staked_soma_id,)).fetchone()
            coin = get_coin(conn, staked_soma_id)  # a coin passes this check and fails on chain
            owner = row["owner"] if row is not None else coin.owner if coin is not None else None
            if owner is None:
                raise errors.ObjectNotFound(f"object {staked_soma_id} not found (withdrawn already?)")
            if owner != sender:
                raise errors.ChainError(f"object {staked_soma_id} is owned by {owner}, not by the signer {sender}")

        await self._call(self._read, check)

        def body(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], p: ProtocolParams, gas: str) -> None:
            model_rules.withdraw_stake(conn, ctx, state, staked_id=staked_soma_id)

        return (await self._call(self._execute, signer, "WithdrawStake", body))[1]

    async def set_model_commission_rate(self, signer: Keypair, model_id: str, new_rate: int) -> TxResult:
        if new_rate < 0:  # a u64 on the wire: the client cannot even build it
            raise errors.ChainError(f"commission rate {new_rate} bps is negative; it is a u64 (0..10000 bps)")

        def body(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], p: ProtocolParams, gas: str) -> None:
            model_rules.set_commission_rate(conn, ctx, model_id=model_id, new_rate=new_rate)

        return (await self._call(self._execute, signer, "SetModelCommissionRate", body))[1]

    async def deactivate_model(self, signer: Keypair, model_id: str) -> TxResult:
        def body(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], p: ProtocolParams, gas: str) -> None:
            model_rules.deactivate_model(conn, ctx, model_id=model_id)

        return (await self._call(self._execute, signer, "DeactivateModel", body))[1]

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
        vector = np.asarray(embedding, dtype=np.float32).ravel()

        def body(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], p: ProtocolParams, gas: str) -> None:
            submissions.submit_data(
                conn,
                ctx,
                state,
                p,
                gas,
                target_id=target_id,
                data_url=data_url,
                data_checksum=commitment(data),
                data_size=len(data),
                model_id=model_id,
                embedding=vector,
                distance_score=distance_score,
                loss_score=list(loss_score),
            )

        return (await self._call(self._execute, signer, "SubmitData", body))[1]

    async def claim_rewards(self, signer: Keypair, target_id: str) -> TxResult:
        def body(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], p: ProtocolParams, gas: str) -> None:
            submissions.claim_rewards(conn, ctx, state, p, target_id=target_id)

        return (await self._call(self._execute, signer, "ClaimRewards", body))[1]

    async def pay_coins(
        self, signer: Keypair, recipients: Sequence[str], amounts: Sequence[int]
    ) -> TxResult:
        if len(recipients) != len(amounts) or not recipients:
            raise errors.InvalidArguments(detail="recipients and amounts must be non-empty and of equal length")

        def body(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], p: ProtocolParams, gas: str) -> None:
            coin_rules.pay_coins(
                conn, ctx, state, p, gas, coins=[gas], amounts=list(amounts),
                recipients=[canonical_address(r) for r in recipients],
            )

        return (await self._call(self._execute, signer, "PayCoins", body))[1]

    async def merge_coins(self, signer: Keypair) -> TxResult:
        def body(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any], p: ProtocolParams, gas: str) -> None:
            others = [c for c in coin_rows(conn, ctx.sender) if c.id != gas][: MAX_MERGE - 1]
            coin = get_coin(conn, gas)
            assert coin is not None
            for other in others:
                delete_coin(conn, ctx, other.id)
            set_coin_balance(conn, ctx, gas, coin.balance + sum(c.balance for c in others))

        return (await self._call(self._execute, signer, "MergeCoins", body))[1]

    async def execute_signed(self, tx: TransactionData, digest: bytes) -> Effects:
        """Execute a transaction signed by its sender (signature already checked) whose digest is
        `digest`: the served network's path (`chain.sim.execute.execute_signed`)."""

        def run() -> Effects:
            conn = connect(self.db_path)
            try:
                return execute_signed(conn, tx, digest)
            finally:
                conn.close()

        return await self._call(run)

    # -- time ----------------------------------------------------------------------------------
    async def advance_epoch(self) -> int:
        """Change the epoch; on a network made with rivals, they then play their turn."""

        def change(conn: sqlite3.Connection, ctx: TxContext, state: dict[str, Any]) -> tuple[int, Any]:
            epoch_rules.advance_epoch(conn, ctx, state, ProtocolParams.from_dict(state["params"]))
            return int(state["epoch"]), state.get("rivals")

        epoch, rivals = await self._call(self._system_tx, "ChangeEpoch", change)
        if rivals is not None:
            from soma_ray.chain.sim.rivals import play_rivals  # torch: only when a rival trains

            await play_rivals(self, RivalSettings.model_validate(rivals), epoch)
        return int(epoch)

    async def wait_for_next_epoch(self, timeout: float = 120.0) -> int:
        """The simulated clock moves only on advance_epoch (from any process): poll for it."""
        start = (await self.info()).epoch
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            epoch = (await self.info()).epoch
            if epoch > start:
                return epoch
        raise WaitTimeout(f"epoch {start} did not end within {timeout:.0f}s (run `soma-ray sim advance-epoch`)")


def network_info(state: dict[str, Any]) -> NetworkInfo:
    ts, pool = state["target_state"], state["emission_pool"]
    return NetworkInfo(
        chain="sim",
        epoch=int(state["epoch"]),
        protocol_version=int(state["protocol_version"]),
        # The chain adjusts SystemParameters.value_fee_bps itself each epoch (§4.3).
        params=ProtocolParams.from_dict({**state["params"], "value_fee_bps": int(state["value_fee_bps"])}),
        distance_threshold=float(ts["distance_threshold"]),
        reward_per_target=int(ts["reward_per_target"]),
        emission_pool_balance=int(pool["balance"]),
        emission_per_epoch=int(pool["emission_per_epoch"]),
        hits_this_epoch=int(ts["hits_this_epoch"]),
        hits_ema=int(ts["hits_ema"]),
        targets_generated_this_epoch=int(ts["targets_generated_this_epoch"]),
        epoch_start_ms=int(state["epoch_start_ms"]),
        value_fee_bps=int(state["value_fee_bps"]),
    )


def model_info(conn: sqlite3.Connection, model_id: str) -> ModelInfo | None:
    row = conn.execute("SELECT * FROM models WHERE id = ?", (model_id,)).fetchone()
    if row is None:
        return None
    commit = json.loads(row["commitments"]) if row["commitments"] else None
    pending = json.loads(row["pending_update"]) if row["pending_update"] else None
    manifest = None
    if commit is not None:
        # Pending models show their manifest without a key until they reveal (§2.4).
        manifest = Manifest(
            url=commit["url"], checksum=commit["checksum"], size=int(commit["size"]),
            decryption_key=row["decryption_key"],
        )
    return ModelInfo(
        model_id=row["id"],
        owner=row["owner"],
        status=ModelStatus(row["status"]),
        stake=int(row["stake"]),
        create_epoch=int(row["create_epoch"]),
        commit_epoch=row["commit_epoch"],
        manifest=manifest,
        has_pending_update=pending is not None,
        pending_commit_epoch=pending["commit_epoch"] if pending else None,
        commission_rate=int(row["commission_rate"]),
        next_epoch_commission_rate=int(row["next_commission_rate"]),
    )
