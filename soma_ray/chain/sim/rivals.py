"""Background rivals on the simulated network (`SimSettings.rivals`).

At every epoch change the rivals play one turn, each step through the network's own signed
transactions (`SimChain` methods: the real rules, bonds and fees):

1. reveal the models they committed last epoch (the key and embedding kept in `rivals/` under
   the network folder, as a trainer keeps its own);
2. claim their fills whose audit window has closed (§6);
3. add stake to their smallest active model;
4. create and commit new models (real arrgen weights, encrypted, served from `blobs/`);
5. fill a share of the epoch's open targets.

A fill's data is seeded bytes; its embedding is drawn at a cosine distance below the target's
threshold and its `distance_score` is that distance, which is all the chain checks (§4.2). Nobody
re-scores it: the sim has no auditing validators, and a real auditor would disagree.

Each step asks the network's transaction table whether it already ran this epoch, so a turn
that is repeated or resumed after a crash does not stake, create or fill twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import base58
import numpy as np
from soma_sdk import Keypair, SomaClient

from soma_ray.chain import errors
from soma_ray.chain.sim.accounts import rival_keypair
from soma_ray.chain.sim.board import draw, normal, uniform
from soma_ray.chain.sim.settings import DEFAULT_COMMISSION_BANDS, RivalSettings
from soma_ray.chain.types import ModelStatus, Target, TargetStatus
from soma_ray.protocol.architecture import ArchitectureSettings
from soma_ray.protocol.bond import submission_bond
from soma_ray.protocol.commitments import blake2b256, canonical_address
from soma_ray.protocol.windows import reveal_epoch
from soma_ray.storage.local import LocalBlobStore

if TYPE_CHECKING:
    from soma_ray.chain.sim.network import SimChain

log = logging.getLogger(__name__)

RIVAL_WEIGHTS_BASE = 1_000_000  # genesis_weights index range of rival models (genesis uses 0..63)
FEE_MARGIN = 100_000  # shannons kept back for the fees of a step (a few writes at 300 + base 1000)
MODEL_PICK = (0.6, 0.9)  # a fill names the target's first model 60%, the second 30%, else the third


@dataclass
class RivalReport:
    """What one turn did (failed: transactions the network refused, each charged its base fee)."""

    epoch: int
    revealed: int = 0
    claimed: int = 0
    staked: int = 0
    created: int = 0
    filled: int = 0
    failed: int = 0

    def line(self) -> str:
        return (f"epoch {self.epoch}: rivals filled {self.filled}, claimed {self.claimed}, created {self.created} "
                f"model(s), revealed {self.revealed}, staked {self.staked / 1e9:g} SOMA, {self.failed} refused")


def rival_accounts(settings: RivalSettings) -> list[Keypair]:
    return [rival_keypair(settings.seed, i) for i in range(settings.accounts)]


async def play_rivals(sim: SimChain, settings: RivalSettings, epoch: int) -> RivalReport:
    """One turn of every rival at the start of `epoch`."""
    turn = _Turn(sim, settings, epoch)
    for step in (turn.reveal, turn.claim, turn.stake, turn.create, turn.fill):
        await step()
    log.info(turn.report.line())
    return turn.report


class _Turn:
    def __init__(self, sim: SimChain, settings: RivalSettings, epoch: int) -> None:
        self.sim, self.settings, self.epoch = sim, settings, epoch
        self.accounts = rival_accounts(settings)
        self.addresses = [canonical_address(kp.address()) for kp in self.accounts]
        self.report = RivalReport(epoch)
        self.secrets = sim.settings.path / "rivals"

    async def _try(self, action: str, call: Awaitable[Any]) -> bool:
        """Await one transaction; a refusal is part of the game (counted, logged, not raised)."""
        try:
            await call
            return True
        except errors.TransactionFailed as err:
            self.report.failed += 1
            log.info("rival %s refused: %s", action, err)
            return False

    async def _done(self, kind: str, account: int | None = None) -> int:
        senders = self.addresses if account is None else [self.addresses[account]]
        return sum([await self.sim.tx_count(s, kind, self.epoch) for s in senders])

    # -- 1. reveal ----------------------------------------------------------------------------
    async def reveal(self) -> None:
        for kp, address in zip(self.accounts, self.addresses, strict=True):
            for model in await self.sim.models_owned(address):
                if model.status != ModelStatus.PENDING or model.commit_epoch is None:
                    continue
                secret = self.secrets / f"{model.model_id}.json"
                if reveal_epoch(model.commit_epoch) != self.epoch or not secret.is_file():
                    continue
                kept = json.loads(secret.read_text())
                call = self.sim.reveal_model(
                    kp, model.model_id, decryption_key=kept["key"], embedding=np.asarray(kept["embedding"], np.float32)
                )
                self.report.revealed += await self._try("reveal", call)

    # -- 2. claim -----------------------------------------------------------------------------
    async def claim(self) -> None:
        for kp, address in zip(self.accounts, self.addresses, strict=True):
            for target in await self.sim.all_targets(TargetStatus.CLAIMABLE, submitter=address):
                if target.fill_epoch is not None:
                    self.report.claimed += await self._try("claim", self.sim.claim_rewards(kp, target.id))

    # -- 3. stake -----------------------------------------------------------------------------
    async def stake(self) -> None:
        amount = self.settings.add_stake
        if amount <= 0:
            return
        for i, (kp, address) in enumerate(zip(self.accounts, self.addresses, strict=True)):
            if await self._done("AddStakeToModel", i):
                continue
            active = [m for m in await self.sim.models_owned(address) if m.status == ModelStatus.ACTIVE]
            if not active or await self.sim.balance(address) < amount + FEE_MARGIN:
                continue
            smallest = min(active, key=lambda m: (m.stake, m.model_id))
            if await self._try("stake", self.sim.add_stake_to_model(kp, smallest.model_id, amount)):
                self.report.staked += amount

    # -- 4. create ----------------------------------------------------------------------------
    async def create(self) -> None:
        owned = sum([len(await self.sim.models_owned(a)) for a in self.addresses])
        wanted = min(self.settings.new_models_per_epoch, self.settings.max_models - owned)
        wanted -= await self._done("CreateModel")
        state = await self.sim.read_state()
        arch = ArchitectureSettings.model_validate(state["architecture"])
        blobs = LocalBlobStore(self.sim.settings.blob_dir, str(state["blob_url"]))
        for n in range(owned, owned + max(wanted, 0)):
            kp = self.accounts[n % len(self.accounts)]
            if await self.sim.balance(kp.address()) < self.settings.model_stake + FEE_MARGIN:
                continue
            low, high = DEFAULT_COMMISSION_BANDS[n % len(DEFAULT_COMMISSION_BANDS)]
            rate = low + int(uniform(self.settings.seed, "rival-rate", n) * (high - low + 1))
            try:
                model_id = await self.sim.create_model(kp, stake=self.settings.model_stake, commission_rate=rate)
            except errors.TransactionFailed as err:
                self.report.failed += 1
                log.info("rival create refused: %s", err)
                continue
            self.report.created += 1
            await self._commit(kp, model_id, n, arch, blobs)

    async def _commit(self, kp: Keypair, model_id: str, n: int, arch: ArchitectureSettings, blobs: LocalBlobStore) -> None:
        from soma_ray.chain.sim.genesis import genesis_weights  # torch: only when a rival trains

        seed = self.settings.seed
        key = base58.b58encode(blake2b256(b"soma-ray/sim/rival-key/" + model_id.encode() + b"/%d" % seed)).decode()
        encrypted, key = SomaClient.encrypt_weights(genesis_weights(arch, RIVAL_WEIGHTS_BASE + n), key)
        # A rival crowds where the board already is: near a seeded active model, or anywhere.
        active = await self.sim.active_models()
        if active:
            near = active[draw(seed, "rival-near", n) % len(active)].embedding
            embedding = near + normal(seed, "rival-offset", n, near.size) * np.float32(0.3 * np.std(near))
        else:
            embedding = normal(seed, "rival-embedding", n, arch.embedding_dim)
        embedding = embedding.astype(np.float32)
        self.secrets.mkdir(parents=True, exist_ok=True)
        (self.secrets / f"{model_id}.json").write_text(json.dumps({"key": key, "embedding": embedding.tolist()}))
        url = blobs.put(f"models/{model_id}/weights.enc", encrypted)
        call = self.sim.commit_model(
            kp, model_id, weights_url=url, encrypted_weights=encrypted, decryption_key=key, embedding=embedding
        )
        await self._try("commit", call)

    # -- 5. fill ------------------------------------------------------------------------------
    async def fill(self) -> None:
        if self.settings.fill_share <= 0:
            return
        done = await self._done("SubmitData")
        open_targets = await self.sim.all_targets(TargetStatus.OPEN, epoch=self.epoch)
        info = await self.sim.info()
        # The epoch-start targets: every fill (ours too) spawned one more (§3.3), which the share ignores.
        goal = round(self.settings.fill_share * (info.targets_generated_this_epoch - info.hits_this_epoch)) - done
        seed = self.settings.seed
        order = sorted(open_targets, key=lambda t: draw(seed, "fill", int(t.id[2:18], 16)))
        state = await self.sim.read_state()
        blobs = LocalBlobStore(self.sim.settings.blob_dir, str(state["blob_url"]))
        for target in order[: max(goal, 0)]:
            await self._fill_one(target, blobs)

    async def _fill_one(self, target: Target, blobs: LocalBlobStore) -> None:
        seed, tag = self.settings.seed, int(target.id[2:18], 16)
        account = draw(seed, "filler", tag) % len(self.accounts)
        kp = self.accounts[account]
        data = _data(seed, target.id, self.settings.data_bytes)
        params = (await self.sim.info()).params
        if await self.sim.balance(kp.address()) < submission_bond(len(data), params) + FEE_MARGIN:
            return
        pick = uniform(seed, "model-pick", tag)
        index = min(sum(pick >= p for p in MODEL_PICK), len(target.model_ids) - 1)
        # A distance comfortably under the threshold, then an embedding at exactly that distance.
        wanted = min(2.0, target.distance_threshold * (0.6 + 0.35 * uniform(seed, "distance", tag)))
        embedding = _at_distance(target.embedding, normal(seed, "direction", tag, target.embedding.size), wanted)
        url = blobs.put(f"data/rivals/{target.id}.bin", data)
        call = self.sim.submit_data(
            kp, target.id, data=data, data_url=url, model_id=target.model_ids[index], embedding=embedding,
            distance_score=_cosine_distance(embedding, target.embedding),
            loss_score=[2.0 + 3.0 * uniform(seed, "loss", tag)],
        )
        self.report.filled += await self._try("fill", call)


def _data(seed: int, target_id: str, size: int) -> bytes:
    """Seeded bytes standing for a rival's data (never scored)."""
    out = bytearray()
    block = 0
    while len(out) < size:
        out += blake2b256(b"soma-ray/sim/rival-data/%d/" % seed + target_id.encode() + b"/%d" % block)
        block += 1
    return bytes(out[:size])


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 − cos(a, b) in f32, as the scorer reports it (protocol.md §1.6)."""
    a32, b32 = np.asarray(a, np.float32), np.asarray(b, np.float32)
    cos = (a32 / np.linalg.norm(a32)) @ (b32 / np.linalg.norm(b32))
    return float(np.float32(1.0) - np.float32(cos))


def _at_distance(target: np.ndarray, direction: np.ndarray, distance: float) -> np.ndarray:
    """A vector whose cosine distance to `target` is `distance` (0..2), turned towards `direction`."""
    t = np.asarray(target, np.float64)
    t /= np.linalg.norm(t)
    u = np.asarray(direction, np.float64)
    u -= (u @ t) * t
    u /= np.linalg.norm(u)
    cos = 1.0 - distance
    vector: np.ndarray = (cos * t + np.sqrt(max(0.0, 1.0 - cos * cos)) * u).astype(np.float32) * np.float32(4.0)
    return vector
