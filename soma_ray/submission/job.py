"""The submitter job: stream samples through the scoring pool, submit each target's best hit.

Open targets are refreshed at start, after every fill and when the epoch changes (the pipeline
restarts then, because a new epoch brings new targets and models). `submit.targets` chooses which
of them to play (`submission.targets`); only the chosen targets' models are loaded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext

import numpy as np

from soma_ray.chain.base import Chain
from soma_ray.chain.errors import ManifestCountMismatch, TargetExpired, TargetNotOpen
from soma_ray.chain.factory import open_chain
from soma_ray.chain.sim.serve import serving_blobs
from soma_ray.chain.types import Manifest, Target, TargetStatus
from soma_ray.chain.wallet import load_keypair
from soma_ray.display import current, session
from soma_ray.protocol.architecture import ArchitectureSettings, default_architecture
from soma_ray.protocol.commitments import canonical_address
from soma_ray.protocol.constants import MAX_SEQ_LEN
from soma_ray.review.records import ComputeUse, NearMiss, Records, records_path
from soma_ray.runtime import configure_logging, ensure_ray
from soma_ray.scoring.evaluate import Evaluation
from soma_ray.scoring.hits import find_hits, scan
from soma_ray.scoring.pool import ScoringPlan, evaluations_from_batch, score_stream
from soma_ray.storage.factory import open_blob_store
from soma_ray.storage.fetcher import policy_for
from soma_ray.submission.config import OURS, SubmitConfig, check_inputs
from soma_ray.submission.progress import ScoringMetrics, SubmitReport
from soma_ray.submission.submitter import DirectSubmitter, DriverSubmitter, Submitter
from soma_ray.submission.targets import Board, Selection, select_targets

log = logging.getLogger("soma_ray.submit")


def architecture_for(config: SubmitConfig) -> ArchitectureSettings:
    simulated = config.chain.sim.architecture if config.chain.network == "sim" else None
    return default_architecture(config.scoring.architecture, simulated=simulated)


async def _manifests(chain: Chain, model_ids: Sequence[str]) -> dict[str, Manifest]:
    """Manifests one by one, so a model without weights only removes itself."""
    found: dict[str, Manifest] = {}
    for model_id in model_ids:
        try:
            manifest = (await chain.model_manifests([model_id]))[0]
        except ManifestCountMismatch:
            continue
        if manifest.decryption_key:
            found[model_id] = manifest
    return found


class SubmissionRun:
    def __init__(self, config: SubmitConfig, chain: Chain, submitter: Submitter, loop: asyncio.Runner) -> None:
        self.config, self.chain, self.submitter, self.loop = config, chain, submitter, loop
        self.report = SubmitReport()
        self.metrics = ScoringMetrics(config.chain.network)
        self.seen: set[int] = set()
        self.board: Board | None = None  # what target selection read from the chain this epoch
        self.records = Records(records_path(config.driver.state_path))  # near misses, for the epoch review
        self.epoch = 0

    def _finished(self) -> bool:
        s = self.config.submit
        return (s.max_samples is not None and self.report.samples >= s.max_samples) or (
            s.max_fills is not None and len(self.report.fills) >= s.max_fills
        )

    def run(self) -> SubmitReport:
        while not self._finished():
            epoch = self.loop.run(self.chain.info()).epoch
            targets = self.loop.run(self.chain.all_targets(TargetStatus.OPEN))
            if not targets:
                log.info("no open targets in epoch %d; waiting for the next epoch", epoch)
                self.loop.run(self.chain.wait_for_next_epoch())
                continue
            if not self._pipeline(epoch, targets):
                break  # the source is exhausted
        log.info("done: %s", self.report.line())
        return self.report

    async def _read_board(self) -> Board | None:
        """What `submit.targets` needs from the chain: nothing for `all`; stakes for `top_k`; the
        wallet's models (`Chain.models_owned`) for "ours", for `top_k`'s payout and for `opportunity` (ours
        are no rivals)."""
        choice = self.config.submit.targets
        if choice.mode == "all":
            return None
        info = await self.chain.info()
        ranked = choice.mode in ("top_k", "opportunity")
        stakes = {m.model_id: m.stake for m in await self.chain.active_models()} if ranked else {}
        ours: frozenset[str] = frozenset()
        if ranked or OURS in choice.models:
            address = canonical_address(load_keypair(self.config.wallet).address())
            ours = frozenset(m.model_id for m in await self.chain.models_owned(address))
        return Board(params=info.params, stakes=stakes, ours=ours)

    def choose(self, epoch: int, targets: list[Target]) -> Selection:
        """Read the board for this epoch and select the targets to play; logs the choice."""
        self.board = self.loop.run(self._read_board())
        selection = select_targets(targets, self.config.submit.targets, self.board)
        log.info("epoch %d: %s", epoch, selection.summary)
        for target in selection.targets:
            log.debug("target %s: %s", target.id, selection.reasons[target.id])
        return selection

    def _pipeline(self, epoch: int, targets: list[Target]) -> bool:
        """Score until the source ends (False) or the epoch changes / a limit is hit (True)."""
        self.epoch = epoch
        selection = self.choose(epoch, targets)
        if not selection.targets:
            log.info("no target to play in epoch %d; waiting for the next epoch", epoch)
            self.loop.run(self.chain.wait_for_next_epoch())
            return True
        manifests = self.loop.run(_manifests(self.chain, selection.models))
        plan = ScoringPlan(model_config=architecture_for(self.config).shape(), manifests=manifests,
                           targets=selection.targets, fetch_policy=policy_for(self.config.chain.network))
        model_ids = sorted(manifests)
        live = {t.id: t for t in selection.targets}
        log.info("epoch %d: %d targets, scoring with %d models", epoch, len(live), len(model_ids))
        self.show_stage(f"epoch {epoch}: scoring for {len(live)} targets with {len(model_ids)} models")
        for batch in score_stream(self.config.data, plan, self.config.scoring):
            self._take(batch, model_ids, live)
            if self._finished():
                return True
            if self.loop.run(self.chain.info()).epoch != epoch:
                return True
        return False

    def _take(self, batch: dict[str, np.ndarray], model_ids: list[str], live: dict[str, Target]) -> None:
        self.report.loads.update(batch)  # before dropping repeats: a retried batch's loads happened
        fresh = [i for i, sid in enumerate(batch["sample_id"].tolist()) if sid not in self.seen]
        if not fresh:
            return  # a retried batch already counted
        self.seen.update(int(batch["sample_id"][i]) for i in fresh)
        batch = {k: v[fresh] for k, v in batch.items()}
        evaluations = evaluations_from_batch(batch, model_ids)
        report = self.report
        report.samples += len(fresh)
        scored_models = np.isfinite(batch["losses"]).sum(axis=1)
        chunks = np.array([-(-len(bytes(d)) // MAX_SEQ_LEN) for d in batch["data"]])
        report.scored_tokens += int((chunks * scored_models).sum()) * MAX_SEQ_LEN
        targets = list(live.values())
        if targets:
            self._near_misses(evaluations, targets)
        for hit in sorted(find_hits(evaluations, targets), key=lambda h: h.distance):
            report.hits += 1
            if hit.target_id not in live or self._finished():
                continue
            data = bytes(batch["data"][hit.sample_index])
            try:
                tx = self.loop.run(self.submitter.submit(hit, data))
            except (TargetNotOpen, TargetExpired) as exc:
                log.info("target %s is gone (%s); dropping it", hit.target_id, exc.code)
                live.pop(hit.target_id, None)
                report.dropped_targets += 1
                continue
            if tx is None:
                log.info("target %s already has our submission; dropping it", hit.target_id)
                live.pop(hit.target_id, None)
                continue
            report.fills.append(hit.target_id)
            live.pop(hit.target_id, None)
            log.info("filled %s with %d bytes: model %s, distance %.5f, loss %.5f (tx %s)",
                     hit.target_id, len(data), hit.model_id, hit.distance, hit.loss, tx.digest)
            self._refresh(live, set(model_ids))
        self.metrics.record(report)
        report.maybe_log(self.config.submit.progress_interval_s)
        display = current()
        if display is not None:
            display.show(report.figures(self.config.submit.max_samples))

    def show_stage(self, text: str) -> None:
        display = current()
        if display is not None:
            display.stage(text)

    def _refresh(self, live: dict[str, Target], scorable: set[str]) -> None:
        """After a fill: the chain spawned a replacement; play it if its models are loaded and
        `submit.targets` selects it (the selection is re-applied to the open targets whose models
        are loaded, so `top_k` keeps up to k of them with this epoch's board)."""
        current = self.loop.run(self.chain.all_targets(TargetStatus.OPEN))
        loaded = [t for t in current if any(m in scorable for m in t.model_ids)]
        if self.board is None:
            self.board = self.loop.run(self._read_board())  # None again for mode all
        selection = select_targets(loaded, self.config.submit.targets, self.board)
        live.clear()
        live.update({t.id: t for t in selection.targets})

    def _near_misses(self, evaluations: Mapping[str, Sequence[Evaluation]], targets: list[Target]) -> None:
        result = scan(evaluations, targets)
        finite = result.distances[np.isfinite(result.distances)]
        if finite.size:
            self.report.best_distance = min(self.report.best_distance, float(finite.min()))
        margin = self.config.submit.near_miss_margin
        thresholds = np.array([t.distance_threshold for t in targets], np.float32)[:, None]
        gap = np.where(result.distances > thresholds, result.distances - thresholds, np.inf)
        if np.isfinite(gap).any() and gap.min() <= margin:  # the closest miss of the batch only
            t_index, s = np.unravel_index(np.argmin(gap), gap.shape)
            log.info("near miss: a %d-sample batch came %.5f from target %s (threshold %.5f)",
                     gap.shape[1], result.distances[t_index, s], targets[t_index].id, thresholds[t_index, 0])
            self.records.add_near_miss(NearMiss(
                epoch=self.epoch, target_id=targets[t_index].id, model_id=result.model_ids[result.winners[t_index, s]],
                distance=float(result.distances[t_index, s]), threshold=float(thresholds[t_index, 0]),
            ))


def run_submitter(config: SubmitConfig, chain: Chain | None = None, *, use_driver: bool = True) -> SubmitReport:
    """Run the submitter until the source ends or a limit is reached; hits go to the wallet's
    driver actor (`use_driver=False` signs in this process instead)."""
    configure_logging()
    check_inputs(config)  # bad input is one line before Ray starts: the source and the key
    ensure_ray()
    serving = serving_blobs(config.chain.sim) if config.chain.network == "sim" else nullcontext()
    with serving, asyncio.Runner() as loop, session(interval_s=config.submit.progress_interval_s):
        chain = chain or loop.run(open_chain(config.chain))
        submitter: Submitter
        if use_driver:
            from soma_ray.driver.actor import driver_handle
            from soma_ray.review.run import EpochRecorder

            submitter = DriverSubmitter(driver_handle(config, EpochRecorder(config.review)))
        else:
            submitter = DirectSubmitter(chain, load_keypair(config.wallet), open_blob_store(config.storage))
        run = SubmissionRun(config, chain, submitter, loop)
        started = time.monotonic()
        try:
            return run.run()
        finally:
            gpus = config.scoring.num_gpus_per_actor * config.scoring.max_actors  # an upper bound: the pool's size
            run.records.add_compute(ComputeUse(run.epoch, "submit", time.monotonic() - started, gpus))
            loop.run(chain.close())


__all__ = ["SubmissionRun", "architecture_for", "run_submitter"]
