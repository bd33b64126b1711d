"""`Driver`: the wallet's one owner. Records every action before sending it and its outcome after
(`DriverState`), reconciles with the chain on start, and runs the protocol's deadlines:
reveal in exactly commit epoch + 1 (§5), claim from fill epoch + 2 (§6).

Plain async Python: `actor.py` runs it as a Ray actor; tests drive it directly too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np
from soma_sdk import Keypair, SomaClient

from soma_ray.chain.base import Chain
from soma_ray.chain.errors import (
    AuditWindowOpen,
    ChainUnavailable,
    ObjectNotFound,
    TargetNotFound,
    TransactionFailed,
)
from soma_ray.chain.types import ModelInfo, ModelStatus, NetworkInfo, TargetStatus, TxResult
from soma_ray.driver import staking
from soma_ray.driver.actions import (
    LIVE_STATUSES,
    PENDING_STATUSES,
    SETTLED_STATUSES,
    Action,
    ActionStatus,
    ClaimPayload,
    CommitPayload,
    CreateModelPayload,
    MergePayload,
    Payload,
    RevealPayload,
    SplitPayload,
    SubmitPayload,
)
from soma_ray.driver.artifacts import Artifacts
from soma_ray.driver.errors import DriverRefused
from soma_ray.driver.gate import SendGate
from soma_ray.driver.results import CommitResult, DriverStatus, Ledger, StakeResult, TickResult
from soma_ray.driver.settings import SAFE_NETWORKS, DriverSettings
from soma_ray.driver.state import DriverState
from soma_ray.driver.uncertain import SendCounts, is_uncertain
from soma_ray.protocol.bond import submission_bond
from soma_ray.protocol.commitments import canonical_address, commitment
from soma_ray.protocol.rewards import split_filled
from soma_ray.protocol.windows import audit_window_open, reveal_epoch, reveal_missed
from soma_ray.storage import BlobStore, StorageError, fetch_url, redact_url

log = logging.getLogger("soma_ray.driver")

FEE_RESERVE = 20_000  # shannons kept back for the fees of the transactions around a submission
MERGE_ABOVE = 4  # merge when there are more than this many coins per concurrent submission
CREATE_KEY = "create_model"

T = TypeVar("T")


class Driver:
    def __init__(
        self, chain: Chain, signer: Keypair, store: BlobStore, settings: DriverSettings, network: str
    ) -> None:
        self.chain, self.signer, self.store, self.settings = chain, signer, store, settings
        self.network = network
        self.address = canonical_address(signer.address())
        self.state = DriverState(settings.state_path)
        self.gate = SendGate()  # sends shared; finding out what an unanswered send did, exclusive
        self.counts = SendCounts()
        self._uncertain: set[str] = set()  # keys of actions sent without an answer, not yet settled
        self._fee_unknown: set[str] = set()  # keys of actions the chain refused, their fee not yet charged
        self._create_lock = asyncio.Lock()
        self._coins_lock = asyncio.Lock()

    # -- start-up --------------------------------------------------------------------------

    async def start(self) -> None:
        """Refuse unsafe networks, remember the starting balance, reconcile, act on what is due."""
        if self.network not in SAFE_NETWORKS and not self.settings.allow_network:
            raise DriverRefused(
                f"network {self.network!r} is not sim or testnet; set driver.allow_network: true to sign on it"
            )
        if self.state.meta("start_balance") is None:
            self.state.set_meta("start_balance", str(await self.chain.balance(self.address)))
        await self.reconcile()
        await self.tick()

    def _failpoint(self, name: str) -> None:
        """Fault tests: die here once (the restarted driver must recover)."""
        if self.settings.failpoint == name and self.state.meta(f"fired:{name}") is None:
            self.state.set_meta(f"fired:{name}", "1")
            log.warning("failpoint %s: exiting", name)
            os._exit(17)

    async def _epoch(self) -> int:
        return (await self.chain.info()).epoch

    # -- reconciliation --------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Settle every action left `intended` by a crash from what the chain says happened, charge
        what they cost, and send again the commits that never landed (a reveal depends on them)."""
        intended = self.state.actions(statuses=(ActionStatus.INTENDED,))
        self._uncertain.update(a.key for a in intended)
        await self.settle_uncertain()
        for action in intended:
            commit = self.state.get(action.key)
            if commit is not None and isinstance(commit.payload, CommitPayload) \
                    and commit.status == ActionStatus.INTERRUPTED:
                log.info("commit %s did not land; sending it again (same weights, same key)", action.key)
                self.state.record(action.key, await self._epoch(), commit.payload)
                await self._send_commit(action.key, commit.payload)

    async def settle_uncertain(self) -> None:
        """Find out what every unanswered send did (`_settle_locked`), with no send in flight."""
        async with self.gate.exclusive():
            await self._settle_locked()

    async def _settle_locked(self) -> None:
        """Settle the unanswered actions from chain state (landed: done; never landed:
        interrupted, to be sent again; overtaken: failed), then charge their fees: with nothing
        else in flight, what the chain's balance lacks against the ledger is exactly what they
        cost (a lost answer hides the fee; a reset before execution cost nothing)."""
        keys, self._uncertain = self._uncertain, set()
        refused, self._fee_unknown = self._fee_unknown, set()
        settled = []
        for key in sorted(keys):
            action = self.state.get(key)
            if action is None or action.status != ActionStatus.INTENDED:
                continue
            await self._settle(action)
            settled.append(key)
            self.counts.reconciled += 1
            after = self.state.get(key)
            if after is not None and after.status == ActionStatus.DONE:
                self.counts.landed += 1
            log.info("settled %s from the chain: %s", key, after.status if after else "?")
        if settled or refused:
            await self._charge_unexplained((settled or sorted(refused))[0])

    async def _settle(self, action: Action[Payload]) -> None:
        key, payload = action.key, action.payload
        if isinstance(payload, SubmitPayload):
            await self._settle_submit(key, payload)
        elif isinstance(payload, CreateModelPayload):
            await self._settle_create_model(key, payload)
        elif isinstance(payload, CommitPayload):
            await self._settle_commit(key, payload)
        elif isinstance(payload, RevealPayload):
            await self._settle_reveal(key, payload)
        elif isinstance(payload, ClaimPayload):
            await self._settle_claim(key, payload)
        elif staking.is_staking(payload):
            await staking.settle(self, key, payload)
        else:  # merges and splits: whether or not they ran, only their fee matters (charged below)
            self.state.finish(key, ActionStatus.DONE, error="no answer; fee read from the balance")

    async def _charge_unexplained(self, key: str) -> None:
        gap = self.ledger().expected_balance - await self.chain.balance(self.address)
        if gap > 0:
            self.state.add_fee(key, gap)
            log.info("%s: fees of unanswered transactions: %d shannons (from the balance)", key, gap)
        elif gap < 0:
            log.warning("the chain holds %d shannons more than the ledger explains (paid by someone else?)", -gap)

    async def _settle_submit(self, key: str, p: SubmitPayload) -> None:
        target_id = p.target_id
        try:
            target = await self.chain.get_target(target_id)
        except ObjectNotFound:
            self.state.finish(key, ActionStatus.FAILED, error="target gone before reconciliation")
            return
        if target.submitter and canonical_address(target.submitter) == self.address:
            self.state.finish(key, ActionStatus.DONE, payload=replace(p, fill_epoch=target.fill_epoch))
        elif target.status == TargetStatus.OPEN and target.generation_epoch >= await self._epoch():
            self.state.finish(key, ActionStatus.INTERRUPTED, error="never landed")
        else:
            self.state.finish(key, ActionStatus.FAILED, error=f"target {target.status} (not ours)")

    async def _settle_create_model(self, key: str, p: CreateModelPayload) -> None:
        known = {a.payload.model_id for a in self.state.actions(CreateModelPayload, (ActionStatus.DONE,))}
        new = [m for m in await self.chain.models_owned(self.address) if m.model_id not in known]
        if not new:
            self.state.finish(key, ActionStatus.INTERRUPTED, error="create never landed")
            return
        model_id = new[0].model_id
        self.state.set_meta("model_id", model_id)
        self.state.finish(key, ActionStatus.DONE, payload=replace(p, model_id=model_id))
        log.info("created model %s (found on the chain: the answer was lost)", model_id)

    async def _settle_commit(self, key: str, p: CommitPayload) -> None:
        model = await self.chain.get_model(p.model_id)
        if self._commit_landed(model, p):
            self.state.finish(key, ActionStatus.DONE, payload=replace(p, commit_epoch=_commit_epoch(model)))
        else:
            self.state.finish(key, ActionStatus.INTERRUPTED, error="commit never landed")

    def _commit_landed(self, model: ModelInfo, p: CommitPayload) -> bool:
        checksum = p.checksum
        if model.status == ModelStatus.PENDING:
            return model.manifest is not None and model.manifest.checksum == checksum
        if model.status == ModelStatus.ACTIVE and p.update:
            return bool(model.has_pending_update) or (model.manifest is not None and model.manifest.checksum == checksum)
        return model.status == ModelStatus.ACTIVE and model.manifest is not None and model.manifest.checksum == checksum

    async def _settle_reveal(self, key: str, p: RevealPayload) -> None:
        model = await self.chain.get_model(p.model_id)
        revealed = (model.status == ModelStatus.ACTIVE and not model.has_pending_update
                    and model.manifest is not None and model.manifest.checksum == p.checksum)
        self.state.finish(key, ActionStatus.DONE if revealed else ActionStatus.INTERRUPTED)

    async def _settle_claim(self, key: str, p: ClaimPayload) -> None:
        try:
            await self.chain.get_target(p.target_id)
        except ObjectNotFound:
            self.state.finish(key, ActionStatus.DONE)  # claimed (the chain pays us whoever claims)
            return
        self.state.finish(key, ActionStatus.INTERRUPTED)

    # -- sending ---------------------------------------------------------------------------

    async def _send(self, key: str, send: Callable[[], Awaitable[T]]) -> T | None:
        """Send the action recorded under `key` (`send` finishes it in the ledger) until the chain
        has it: an unanswered send is settled from chain state (`settle_uncertain`) and sent
        again only if it never landed. Returns `send`'s result, or None when the outcome was read
        from the chain instead."""
        for attempt in range(self.settings.send_attempts):
            if attempt:
                action = self.state.get(key)
                if action is None or not self.state.record(key, await self._epoch(), action.payload, action.amount):
                    return None
                self.counts.retried += 1
                log.info("%s never landed; sending it again (try %d)", key, attempt + 1)
            try:
                async with self.gate.shared():
                    result = await send()
                await self._charge_refused(key)
                return result
            except Exception as err:
                await self._charge_refused(key)
                if not is_uncertain(err):
                    raise
                self.counts.uncertain += 1
                self._uncertain.add(key)
                log.warning("%s: no answer (%s); reading the chain to find out what happened", key, err)
            await self.settle_uncertain()
            action = self.state.get(key)
            if action is None or action.status != ActionStatus.INTERRUPTED:
                return None
        raise ChainUnavailable(f"{key}: sent {self.settings.send_attempts} times without landing; "
                               "the ledger has it as interrupted, so a later call sends it again")

    def _failed(self, key: str, status: ActionStatus, error: str) -> None:
        """The chain executed the action and refused it: its fee (the base fee, or less when the
        gas coin held less, §4.3) is charged from the balance once nothing else is in flight."""
        self.state.finish(key, status, error=error)
        self._fee_unknown.add(key)

    async def _charge_refused(self, key: str) -> None:
        if key in self._fee_unknown:
            await self.settle_uncertain()

    async def _epoch_of(self, before: int, read: Callable[[], Awaitable[int | None]]) -> int:
        """The epoch a just-answered transaction ran in: `before` (read before sending) when the
        epoch is still that, else what the chain recorded (`read`): the epoch may have changed
        while it was in flight."""
        if await self._epoch() == before:
            return before
        found = await read()
        return before if found is None else found

    # -- submissions -----------------------------------------------------------------------

    async def submit(
        self, target_id: str, data: bytes, model_id: str, embedding: Sequence[float], distance: float, loss: float
    ) -> TxResult | None:
        """Submit once per target: upload, verify the public URL, preflight the bond, send.

        Returns None (and sends nothing) when this target already has a submission from us.
        """
        key = f"submit:{target_id}"
        existing = self.state.get(key)
        if existing is not None and existing.status in LIVE_STATUSES:
            return None
        info = await self.chain.info()
        if self.settings.auto_reveal and self._reveal_due(info.epoch):
            await self.reveal()  # a reveal is due now: it goes first, before the epoch can end
        bond = submission_bond(len(data), info.params)
        await self._preflight(bond, info.epoch, info.params.submission_bond_per_byte)
        url = self._upload(f"data/{commitment(data)}.bin", data, f"submission to target {target_id}")
        payload = SubmitPayload(target_id=target_id, url=url, size=len(data), checksum=commitment(data),
                                model_id=model_id, distance=distance, loss=loss)
        if not self.state.record(key, info.epoch, payload, amount=bond):
            return None  # another request for this target got here first
        self._failpoint("submit:recorded")
        if self.settings.dry_run:
            self.state.finish(key, ActionStatus.FAILED, error="dry-run: not sent")
            log.info("dry run: would submit %d bytes to %s", len(data), target_id)
            return None

        async def send() -> TxResult:
            before = await self._epoch()
            try:
                tx = await self.chain.submit_data(
                    self.signer, target_id, data=data, data_url=url, model_id=model_id,
                    embedding=np.asarray(embedding, np.float32), distance_score=distance, loss_score=[loss],
                )
            except TransactionFailed as err:
                self._failed(key, ActionStatus.FAILED, err.code)
                raise
            self._failpoint("submit:sent")
            fill_epoch = await self._epoch_of(before, lambda: self._fill_epoch(target_id))
            self.state.finish(key, ActionStatus.DONE, digest=tx.digest, fee=tx.fee,
                              payload=replace(payload, fill_epoch=fill_epoch))
            return tx

        tx = await self._send(key, send)
        if tx is None:  # the outcome was read from the chain
            action = self.state.get(key)
            if action is None or action.status != ActionStatus.DONE:
                return None
            return TxResult(digest=action.digest or "", ok=True, fee=action.fee)
        return tx

    async def _fill_epoch(self, target_id: str) -> int | None:
        try:
            return (await self.chain.get_target(target_id)).fill_epoch
        except ObjectNotFound:
            return None

    def _reveal_due(self, epoch: int) -> bool:
        for commit in self.state.actions(CommitPayload, (ActionStatus.DONE,)):
            ce = commit.payload.commit_epoch
            if ce is not None and reveal_epoch(ce) == epoch:
                reveal = self.state.get(f"reveal:{commit.payload.model_id}:{ce}")
                if reveal is None or reveal.status not in SETTLED_STATUSES:
                    return True
        return False

    async def _preflight(self, bond: int, epoch: int, per_byte: int) -> None:
        balance = await self.chain.balance(self.address)
        if balance < bond + FEE_RESERVE:
            raise DriverRefused(
                f"balance {balance:,} shannons cannot cover a bond of {bond:,} ({per_byte} per byte) plus fees; "
                "fund the wallet"
            )
        cap = self.settings.epoch_spend_cap
        if cap is not None and self.state.spent_in_epoch(epoch) + bond > cap:
            raise DriverRefused(f"epoch {epoch} spend cap of {cap:,} shannons reached; raise driver.epoch_spend_cap")
        await self._keep_coins(balance)

    async def _keep_coins(self, balance: int) -> None:
        """Concurrent submissions each lock a coin (§8): split when fewer coins than that exist;
        merge first when rewards and refunds have scattered the balance over many small coins."""
        async with self._coins_lock:  # one coin reshuffle at a time (concurrent ones would collide)
            await self._keep_coins_locked(balance)

    async def _keep_coins_locked(self, balance: int) -> None:
        want = self.settings.concurrent_submissions
        coins = await self.chain.coins(self.address)
        if self.settings.dry_run:
            return
        # PayCoins pays from its gas coin alone, which the client picks among the richest (§13.3):
        # before a split, merge everything into one coin so that the split fits in it.
        if len(coins) > MERGE_ABOVE * want or 1 < len(coins) < want:
            await self._coin_tx(f"merge:{uuid.uuid4().hex}", MergePayload(coins=len(coins)),
                                lambda: self.chain.merge_coins(self.signer))
            coins = await self.chain.coins(self.address)
            balance = await self.chain.balance(self.address)
        if len(coins) >= want:
            return
        share = balance // (want + 1)
        if share < 10 * FEE_RESERVE:
            return  # too little to split usefully
        missing = want - len(coins)
        await self._coin_tx(f"split:{uuid.uuid4().hex}", SplitPayload(coins=missing, share=share),
                            lambda: self.chain.pay_coins(self.signer, [self.address] * missing, [share] * missing))

    async def one_coin_for(self, amount: int) -> None:
        """CreateModel's and AddStake's stake is paid from the gas coin alone, which the client picks
        at random among the richest (§13.3): when no single coin holds it plus fees, merge first."""
        async with self._coins_lock:
            coins = await self.chain.coins(self.address)
            if self.settings.dry_run or len(coins) < 2 or max(c.balance for c in coins) >= amount + FEE_RESERVE:
                return
            await self._coin_tx(f"merge:{uuid.uuid4().hex}", MergePayload(coins=len(coins)),
                                lambda: self.chain.merge_coins(self.signer))

    async def _coin_tx(self, key: str, payload: MergePayload | SplitPayload,
                       call: Callable[[], Awaitable[TxResult]]) -> None:
        """A merge or split: recorded before it is sent like every action; one that got no answer
        is never sent again (its fee is read from the balance)."""
        self.state.record(key, await self._epoch(), payload)

        async def send() -> TxResult:
            try:
                tx = await call()
            except TransactionFailed as err:
                self._failed(key, ActionStatus.FAILED, err.code)
                raise
            self.state.finish(key, ActionStatus.DONE, digest=tx.digest, fee=tx.fee)
            return tx

        await self._send(key, send)

    def _upload(self, key: str, data: bytes, what: str) -> str:
        """Upload `data` and read it back through its public URL, before anything is recorded or
        sent: a storage fault (5xx, timeout, a URL answering 403/404 or other bytes) is one line
        and leaves no trace in the ledger or on chain; calling again retries from scratch."""
        try:
            url = self.store.put(key, data)
        except StorageError as err:
            raise StorageError(f"{what} not sent: {err}") from None
        if not self.settings.verify_uploads or not url.startswith(("http://", "https://")):
            return url
        try:
            # Capped at the uploaded size: a byte more is an error, not a download of anything.
            fetched = fetch_url(url, max_bytes=len(data))
        except StorageError as err:
            raise DriverRefused(
                f"{what} not sent: the upload is not publicly downloadable ({err}); validators must fetch it, "
                "so make the bucket public-read or fix the storage public URL"
            ) from None
        if len(fetched) != len(data) or commitment(fetched) != commitment(data):
            raise DriverRefused(
                f"{what} not sent: {redact_url(url)} serves different bytes than were uploaded; "
                "fix the storage public URL"
            )
        return url

    # -- models: create, commit, reveal ----------------------------------------------------

    async def ensure_model(self) -> str:
        async with self._create_lock:
            for attempt in range(self.settings.send_attempts):
                model_id = self.state.meta("model_id")
                if model_id is not None:
                    return model_id
                if attempt:
                    self.counts.retried += 1
                await self._create_once()
            raise ChainUnavailable(f"CreateModel sent {self.settings.send_attempts} times without landing")

    async def _create_once(self) -> None:
        """One CreateModel with nothing else in flight: create_model answers only the id, so the
        fee is the balance change less the stake. A lost answer is found in the models the
        address owns."""
        stake = self.settings.model_stake
        await self.one_coin_for(stake)
        self.state.record(CREATE_KEY, await self._epoch(), CreateModelPayload(stake=stake), amount=stake)
        self._failpoint("create:recorded")
        async with self.gate.exclusive():
            before = await self.chain.balance(self.address)
            try:
                model_id = await self.chain.create_model(
                    self.signer, stake=stake, commission_rate=self.settings.commission_rate
                )
            except TransactionFailed as err:
                fee = before - await self.chain.balance(self.address)
                self.state.finish(CREATE_KEY, ActionStatus.FAILED, error=err.code, fee=fee)
                raise
            except Exception as err:
                if not is_uncertain(err):
                    raise
                self.counts.uncertain += 1
                log.warning("CreateModel: no answer (%s); looking for the model on the chain", err)
                self._uncertain.add(CREATE_KEY)
                await self._settle_locked()
                return
            fee = before - await self.chain.balance(self.address) - stake
        self.state.set_meta("model_id", model_id)
        self.state.finish(CREATE_KEY, ActionStatus.DONE, payload=CreateModelPayload(stake=stake, model_id=model_id),
                          fee=fee)
        log.info("created model %s (stake %d shannons, fee %d)", model_id, stake, fee)

    async def commit(self, manifest_path: str) -> CommitResult:
        """Commit training artifacts (training/export.py's manifest) with a fresh key (§2.2)."""
        artifacts = Artifacts.read(Path(manifest_path))
        weights = artifacts.weights_path(Path(manifest_path)).read_bytes()
        if commitment(weights) != artifacts.weights_blake2b:
            raise DriverRefused(f"{manifest_path}: weights do not match the manifest's Blake2b; re-export them")
        model_id = await self.ensure_model()
        key = f"commit:{model_id}:{artifacts.weights_blake2b}"
        existing = self.state.get(key)
        if existing is not None and existing.status in (ActionStatus.INTENDED, ActionStatus.DONE):
            return CommitResult(model_id=model_id, status=existing.status, key=key)
        model = await self.chain.get_model(model_id)
        if model.status == ModelStatus.PENDING:
            raise DriverRefused(f"model {model_id} has a commit awaiting its reveal; commit again after revealing")
        encrypted, decryption_key = SomaClient.encrypt_weights(weights)  # a fresh random key every commit
        url = self._upload(f"models/{model_id}/{commitment(encrypted)}.enc", encrypted, f"commit of model {model_id}")
        epoch = await self._epoch()
        payload = CommitPayload(
            model_id=model_id, url=url, checksum=commitment(encrypted), size=len(encrypted),
            decryption_key=decryption_key, embedding=artifacts.embedding, manifest_path=str(manifest_path),
            update=model.status == ModelStatus.ACTIVE, heldout_loss=artifacts.heldout_loss,
        )
        if not self.state.record(key, epoch, payload):
            return CommitResult(model_id=model_id, status=ActionStatus.INTENDED, key=key)
        self._failpoint("commit:recorded")
        action = self.state.get(key, CommitPayload)
        assert action is not None
        await self._send_commit(action.key, action.payload, encrypted)
        return CommitResult(model_id=model_id, status=ActionStatus.DONE, key=key)

    async def _send_commit(self, key: str, p: CommitPayload, encrypted: bytes | None = None) -> None:
        if encrypted is None:  # re-create the same bytes: CTR with the recorded key is deterministic
            manifest = Path(p.manifest_path)
            weights = Artifacts.read(manifest).weights_path(manifest).read_bytes()
            encrypted, _ = SomaClient.encrypt_weights(weights, p.decryption_key)
            if commitment(encrypted) != p.checksum:
                self.state.finish(key, ActionStatus.FAILED,
                                  error="weights changed on disk since the commit was recorded")
                return
        if self.settings.dry_run:
            self.state.finish(key, ActionStatus.FAILED, error="dry-run: not sent")
            return
        weights = encrypted

        async def send() -> TxResult:
            before = await self._epoch()
            try:
                tx = await self.chain.commit_model(
                    self.signer, p.model_id, weights_url=p.url, encrypted_weights=weights,
                    decryption_key=p.decryption_key, embedding=np.asarray(p.embedding, np.float32),
                )
            except TransactionFailed as err:
                self._failed(key, ActionStatus.FAILED, err.code)
                raise
            self._failpoint("commit:sent")
            epoch = await self._epoch_of(before, lambda: self._chain_commit_epoch(p.model_id))
            self.state.finish(key, ActionStatus.DONE, digest=tx.digest, fee=tx.fee,
                              payload=replace(p, commit_epoch=epoch))
            log.info("committed model %s in epoch %d; reveal due in epoch %d", p.model_id, epoch,
                     reveal_epoch(epoch))
            return tx

        await self._send(key, send)

    async def _chain_commit_epoch(self, model_id: str) -> int | None:
        return _commit_epoch(await self.chain.get_model(model_id))

    async def reveal(self) -> list[str]:
        """Reveal every commit whose reveal epoch (commit epoch + 1) is now; returns the model ids."""
        epoch = await self._epoch()
        revealed = []
        for commit in self.state.actions(CommitPayload, (ActionStatus.DONE,)):
            commit_epoch = commit.payload.commit_epoch
            if commit_epoch is None:
                continue
            key = f"reveal:{commit.payload.model_id}:{commit_epoch}"
            done = self.state.get(key)
            if done is not None and done.status in SETTLED_STATUSES:
                continue
            if reveal_missed(commit_epoch, epoch):
                self.state.record(key, epoch, RevealPayload(model_id=commit.payload.model_id))
                self.state.finish(key, ActionStatus.FAILED, error=f"reveal epoch {reveal_epoch(commit_epoch)} missed")
                log.error("missed the reveal of %s (due in epoch %d)", commit.payload.model_id,
                          reveal_epoch(commit_epoch))
                continue
            if epoch == reveal_epoch(commit_epoch) and await self._reveal_one(key, commit, epoch):
                revealed.append(commit.payload.model_id)
        return revealed

    async def _reveal_one(self, key: str, commit: Action[CommitPayload], epoch: int) -> bool:
        p = commit.payload
        self._failpoint("reveal:due")
        if not self.state.record(key, epoch, RevealPayload(model_id=p.model_id, checksum=p.checksum)):
            return False  # being revealed (another request got here first) or revealed
        if self.settings.dry_run:
            self.state.finish(key, ActionStatus.FAILED, error="dry-run: not sent")
            return False

        async def send() -> TxResult:
            try:
                tx = await self.chain.reveal_model(
                    self.signer, p.model_id, decryption_key=p.decryption_key,
                    embedding=np.asarray(p.embedding, np.float32),
                )
            except TransactionFailed as err:
                self._failed(key, ActionStatus.FAILED, err.code)
                log.error("reveal of %s failed: %s", p.model_id, err)
                raise
            self.state.finish(key, ActionStatus.DONE, digest=tx.digest, fee=tx.fee)
            log.info("revealed model %s in epoch %d", p.model_id, epoch)
            return tx

        try:
            await self._send(key, send)
        except TransactionFailed:
            return False
        done = self.state.get(key)
        return done is not None and done.status == ActionStatus.DONE

    # -- claims ----------------------------------------------------------------------------

    async def claim(self, target_ids: Sequence[str] | None = None) -> list[str]:
        """Claim what is due: our fills and our models' wins from fill epoch + 2 (or the given
        targets). A claim tried too early waits (AuditWindowOpen) and is retried later."""
        info = await self.chain.info()
        model_id = self.state.meta("model_id")
        due: dict[str, int | None] = {}
        if target_ids is not None:
            due.update({t: None for t in target_ids})
        else:
            for submitted in self.state.actions(SubmitPayload, (ActionStatus.DONE,)):
                due[submitted.payload.target_id] = submitted.payload.fill_epoch
            for claim in self.state.actions(ClaimPayload, (ActionStatus.WAITING, ActionStatus.INTERRUPTED)):
                due.setdefault(claim.payload.target_id, claim.payload.fill_epoch)
            async for target in self.chain.iter_targets(TargetStatus.CLAIMABLE):
                ours = target.winning_model_id is not None and target.winning_model_id == model_id
                incentive = split_filled(target.reward_pool, info.params).claimer
                if ours or (self.settings.claim_others and incentive > 2 * info.params.base_fee):
                    due.setdefault(target.id, target.fill_epoch)
        claimed = []
        for target_id, fill_epoch in due.items():
            if target_ids is None and fill_epoch is not None and audit_window_open(fill_epoch, info.epoch):
                continue
            if await self._claim_one(target_id, info, model_id):
                claimed.append(target_id)
        return claimed

    async def _claim_one(self, target_id: str, info: NetworkInfo, model_id: str | None) -> bool:
        key = f"claim:{target_id}"
        existing = self.state.get(key)
        if existing is not None and existing.status in SETTLED_STATUSES:
            return False
        try:
            target = await self.chain.get_target(target_id)
        except ObjectNotFound:
            return False
        split = split_filled(target.reward_pool, info.params)
        mine = target.submitter is not None and canonical_address(target.submitter) == self.address
        payload = ClaimPayload(
            target_id=target_id, fill_epoch=target.fill_epoch,
            as_submitter=split.submitter if mine else 0,
            as_model_owner=split.model_owner if model_id and target.winning_model_id == model_id else 0,
            as_claimer=split.claimer, bond_returned=target.bond_amount if mine else 0,
        )
        if existing is not None and existing.status == ActionStatus.WAITING:
            self.state.finish(key, ActionStatus.INTERRUPTED)
        if not self.state.record(key, info.epoch, payload):
            return False  # another request is claiming it
        if self.settings.dry_run:
            self.state.finish(key, ActionStatus.FAILED, error="dry-run: not sent")
            return False

        async def send() -> TxResult | None:
            try:
                tx = await self.chain.claim_rewards(self.signer, target_id)
            except AuditWindowOpen:
                self._failed(key, ActionStatus.WAITING, "AuditWindowOpen")
                log.info("claim of %s is early (audit window open); retrying in a later epoch", target_id)
                return None
            except (TargetNotFound, ObjectNotFound):
                self.state.finish(key, ActionStatus.FAILED, error="already claimed by someone else")
                return None
            except TransactionFailed as err:
                self._failed(key, ActionStatus.FAILED, err.code)
                return None
            self.state.finish(key, ActionStatus.DONE, digest=tx.digest, fee=tx.fee)
            return tx

        await self._send(key, send)
        done = self.state.get(key)
        return done is not None and done.status == ActionStatus.DONE

    # -- staking (driver/staking.py) -------------------------------------------------------

    async def add_stake(self, model_id: str, amount: int, request_id: str) -> StakeResult:
        """AddStakeToModel of `amount` shannons, sent once per `request_id`."""
        return await staking.add_stake(self, model_id, amount, request_id)

    async def withdraw_stake(self, model_id: str | None, staked_ids: Sequence[str] | None = None) -> list[StakeResult]:
        """WithdrawStake of our whole StakedSoma objects in `model_id`'s pool (or the given ones)."""
        return await staking.withdraw_stake(self, model_id, staked_ids)

    async def set_commission(self, rate: int, model_id: str | None = None) -> StakeResult:
        """SetModelCommissionRate: `rate` bps from the next epoch, on our model (or `model_id`)."""
        return await staking.set_commission(self, rate, model_id)

    # -- the epoch clock -------------------------------------------------------------------

    async def tick(self) -> TickResult:
        """What a new epoch makes due: reveals (if auto_reveal) and claims."""
        revealed = await self.reveal() if self.settings.auto_reveal else []
        return TickResult(revealed=revealed, claimed=await self.claim())

    # -- reporting -------------------------------------------------------------------------

    async def status(self) -> DriverStatus:
        epoch = await self._epoch()
        model_id = self.state.meta("model_id")
        model = await self.chain.get_model(model_id) if model_id else None
        pending = [a.key for a in self.state.actions(statuses=PENDING_STATUSES)]
        deadline = None
        for commit in self.state.actions(CommitPayload, (ActionStatus.DONE,)):
            ce = commit.payload.commit_epoch
            reveal = self.state.get(f"reveal:{commit.payload.model_id}:{ce}")
            if ce is not None and (reveal is None or reveal.status not in SETTLED_STATUSES):
                deadline = f"reveal {commit.payload.model_id} in epoch {reveal_epoch(ce)}"
        return DriverStatus(
            address=self.address, network=self.network, epoch=epoch,
            balance=await self.chain.balance(self.address), model_id=model_id,
            model_status=model.status if model else None, pending=pending,
            next_deadline=deadline, ledger=self.ledger(), dry_run=self.settings.dry_run,
        )

    def ledger(self) -> Ledger:
        return self.state.ledger()


def _commit_epoch(model: ModelInfo) -> int | None:
    """The epoch of the model's latest commit as the chain recorded it (a first commit while
    pending, an update's while it waits for its reveal)."""
    if model.status == ModelStatus.PENDING:
        return model.commit_epoch
    return model.pending_commit_epoch
