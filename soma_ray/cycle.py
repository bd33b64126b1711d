"""The main job: the whole lifecycle on a fresh embedded simulated network, with a local Ray.

fund a new wallet → train a tiny model (Ray Train + DeepSpeed) → commit it through the wallet's
driver actor → reveal in the next epoch → score and submit in the epoch whose targets list the
model → claim two epochs later → a ledger that adds up to the wallet's balance on chain.

The driver actor is the one process that signs (design.md); this job only funds the wallet,
moves the simulated clock and asks the driver to act. Everything lives under `cycle.folder`.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Coroutine
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table
from soma_sdk import Keypair

from soma_ray.chain.base import Chain
from soma_ray.chain.config import WalletConfig
from soma_ray.chain.factory import open_chain
from soma_ray.chain.served.config import LocalnetSettings
from soma_ray.chain.served.server import LocalnetURLs
from soma_ray.chain.sim import SimChain
from soma_ray.chain.sim.serve import serving_blobs
from soma_ray.chain.sim.settings import SimSettings
from soma_ray.chain.types import ModelStatus, TargetStatus
from soma_ray.chain.wallet import create_key_file, load_keypair
from soma_ray.config.jobs import CycleConfig
from soma_ray.display import Display, session
from soma_ray.driver.remote import actor_errors, call
from soma_ray.driver.results import CommitResult, DriverStatus, Ledger
from soma_ray.errors import CycleError
from soma_ray.localnet import serving_in_background
from soma_ray.protocol.commitments import canonical_address
from soma_ray.protocol.constants import to_soma
from soma_ray.protocol.windows import claimable_from, reveal_epoch
from soma_ray.review.records import ComputeUse, Records, records_path
from soma_ray.storage import StorageError, fetch_url
from soma_ray.submission.config import SubmitConfig
from soma_ray.training.config import TrainConfig

T = TypeVar("T")
MARKER = ".soma-ray-cycle"  # only a folder holding this file is ever wiped
STEP_TITLES = (  # the display's checklist; each step's result line replaces its title when done
    "fund a new wallet, start its driver actor",
    "train a model (Ray Train + DeepSpeed) and export it",
    "create the model and commit it",
    "advance an epoch: the driver reveals the model",
    "advance an epoch: targets drawn over the active models",
    "score the data on the Ray pool, submit the best hits",
    "advance past the audit window, claim",
)
STEPS = len(STEP_TITLES)
SERVED_POLL_SECONDS = 1.0  # the driver's epoch polling on the served network (the cycle moves the clock itself)


@dataclass(frozen=True)
class CycleResult:
    address: str
    model_id: str
    commit_epoch: int
    reveal_epoch: int
    active_at_reveal: bool
    open_targets: int
    targets_with_model: int  # open targets of the scoring epoch that list our model
    hits: int
    fills: list[str]
    balance_before: int  # after the faucet, before anything was spent
    balance_after: int  # read from the chain at the end
    stake: int  # taken by CreateModel (0 when the model already existed)
    ledger: Ledger  # the driver's ledger, this cycle's share (end minus start)
    pending: list[str]  # driver actions still open at the end (none when everything settled)
    driver_stopped: bool = False
    epochs: dict[str, int] = field(default_factory=dict)
    review: Path | None = None  # the epoch review's folder
    # Our shares of targets others claimed (the chain pays every share whoever claims, §6): on
    # chain but not in our ledger. As the review counts them, from the board snapshots.
    paid_by_others: int = 0

    @property
    def fees(self) -> int:
        return self.ledger.fees

    @property
    def rewards(self) -> int:
        return self.ledger.rewards

    @property
    def expected_after(self) -> int:
        return (self.balance_before - self.stake - self.fees - self.ledger.bonds_locked
                + self.ledger.bonds_returned + self.rewards + self.paid_by_others)

    @property
    def unexplained(self) -> int:
        return self.balance_after - self.expected_after


def prepare_folder(folder: Path, fresh: bool) -> None:
    """Wipe `folder` for a fresh start, but only a folder the cycle made (it holds MARKER)."""
    if folder == Path(folder.anchor) or folder == Path.home() or Path.cwd().is_relative_to(folder):
        raise CycleError(f"cycle.folder {folder} holds the working directory or home; choose a folder of its own")
    if fresh and folder.exists():
        if not (folder / MARKER).is_file() and any(folder.iterdir()):
            raise CycleError(
                f"cycle.folder {folder} exists and was not made by the cycle; choose another folder or empty it"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).touch()


def _check_served(settings: SimSettings) -> None:
    """The blob port was taken: make sure whoever serves it serves *this* network's blobs."""
    sample = next((p for p in sorted(settings.blob_dir.rglob("*")) if p.is_file()), None)
    if sample is None:
        return
    url = f"{settings.blob_url.rstrip('/')}/{sample.relative_to(settings.blob_dir).as_posix()}"
    try:
        expected = sample.read_bytes()
        same = fetch_url(url, max_bytes=len(expected)) == expected
    except StorageError:
        same = False
    if not same:
        raise CycleError(
            f"{settings.blob_url} is served by another process, not from {settings.blob_dir}; "
            "stop it or set chain.sim.blob_url to a free port"
        )


def _localnet_settings(settings: SimSettings) -> LocalnetSettings:
    """The cycle's network served on free ports of this machine (its blob URL follows the port)."""
    genesis = SimSettings.model_validate(settings.model_dump(exclude={"blob_url"}))
    ports = dict.fromkeys(("rpc_port", "faucet_port", "scoring_port", "admin_port", "blob_port"), 0)
    return LocalnetSettings.model_validate({"host": "127.0.0.1", **ports, "sim": genesis})


J = TypeVar("J", SubmitConfig, TrainConfig)


def _through_the_wire(job: J, urls: LocalnetURLs) -> J:
    """A step's config pointed at the served network: its RPC, faucet, admin and scoring URLs, the
    uploads published by its blob server, the driver allowed to sign there (it is ours), and the
    network's own model shape (a URL network would otherwise mean the full V1)."""
    chain = job.chain.model_copy(update={
        "network": urls.rpc_url, "faucet_url": urls.faucet_url, "admin_url": urls.admin_url,
        "scoring_url": urls.scoring_url,
    })
    local = job.storage.local.model_copy(update={"base_url": urls.blob_url})
    update: dict[str, Any] = {
        "chain": chain,
        "storage": job.storage.model_copy(update={"local": local}),
        "driver": job.driver.model_copy(update={"allow_network": True, "poll_seconds": SERVED_POLL_SECONDS}),
    }
    architecture = job.chain.sim.architecture
    if isinstance(job, SubmitConfig):
        update["scoring"] = job.scoring.model_copy(update={"architecture": architecture})
    else:
        update["model"] = architecture
    return job.model_copy(update=update)


def _wallet(key_file: Path) -> Keypair:
    """A new wallet for a fresh cycle; the existing one when the folder is kept."""
    if key_file.is_file():
        return load_keypair(WalletConfig(key_file=key_file))
    return create_key_file(key_file)


def _sync(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class _Cycle:
    """The steps, in order, as the display's checklist; each ends with one line of outcome (training
    and scoring show their figures on the same display)."""

    def __init__(
        self, config: CycleConfig, submit: SubmitConfig, training: TrainConfig, chain: Chain, display: Display
    ) -> None:
        self.config, self.submit, self.training, self.chain, self.display = config, submit, training, chain, display
        self.epochs: dict[str, int] = {}

    def say(self, step: int, text: str) -> None:
        self.display.step_done(step - 1, text)

    def balance(self, address: str) -> int:
        return _sync(self.chain.balance(address))

    def advance(self) -> int:
        return _sync(self.chain.advance_epoch())

    def advance_to(self, epoch: int) -> int:
        """Move the simulated clock on until `epoch` (at least one step)."""
        current = self.advance()
        while current < epoch:
            current = self.advance()
        return current

    def run(self) -> CycleResult:
        from soma_ray.driver.actor import driver_handle
        from soma_ray.review.run import EpochRecorder
        from soma_ray.submission.job import run_submitter

        # 0. a board with a history: the network plays on before we join (rivals, if any, act)
        for _ in range(self.config.cycle.warmup_epochs):
            epoch = self.advance()
            self.display.note(f"warm-up: epoch {epoch}")

        # 1. fund a new wallet and start its driver actor
        keypair = _wallet(self.submit.wallet.key_file)
        address = canonical_address(keypair.address())
        for _ in range(self.config.cycle.faucet_requests):
            _sync(self.chain.faucet(address))
        handle = driver_handle(self.submit, EpochRecorder(self.config.review))  # a board snapshot every epoch
        ledger0: Ledger = call(handle.ledger.remote())  # after its start-up (a kept folder may owe claims)
        start: DriverStatus = call(handle.status.remote())
        had_model = start.model_id is not None
        before = self.balance(address)
        self.say(1, f"wallet {address} funded: {to_soma(before):.9f} SOMA; driver actor started")
        if start.model_status == ModelStatus.PENDING:
            # A kept folder whose last run stopped between commit and reveal: move the clock to
            # the reveal epoch first (the driver reveals there), or the new commit is refused.
            self.advance()
            call(handle.tick.remote())
            self.display.note(f"the last run's commit of {start.model_id} revealed first")

        # 2. train on the network's architecture, export the best checkpoint
        manifest, trained = self.train()
        self.say(2, trained)

        # 3. create the model and commit (the driver picks a fresh key and uploads the encrypted weights)
        committed: CommitResult = call(handle.commit.remote(str(manifest)))
        model_id = committed.model_id
        stake = 0 if had_model else self.config.driver.model_stake
        self.epochs["commit"] = _sync(self.chain.info()).epoch
        self.say(3, f"model {model_id} created (stake {to_soma(stake):g} SOMA) and committed in epoch "
                    f"{self.epochs['commit']}")

        # 4. the reveal epoch (the actor's epoch watcher may be first; both are idempotent)
        self.epochs["reveal"] = self.advance_to(reveal_epoch(self.epochs["commit"]))
        call(handle.tick.remote())
        status: DriverStatus = call(handle.status.remote())
        active = status.model_status == ModelStatus.ACTIVE
        if not active:
            shown = status.model_status.value if status.model_status is not None else None
            raise CycleError(f"model {model_id} is {shown} in its reveal epoch; see the driver log")
        self.say(4, f"epoch {self.epochs['reveal']}: model revealed, now active")

        # 5. one more epoch: its targets are drawn over the active models, ours included
        self.epochs["score"] = self.advance()
        targets = _sync(self.chain.all_targets(TargetStatus.OPEN))
        with_model = sum(model_id in t.model_ids for t in targets)
        models = len({m for t in targets for m in t.model_ids})
        self.say(5, f"epoch {self.epochs['score']}: {len(targets)} open targets over {models} models, "
                    f"{with_model} list ours; scoring and submitting")

        # 6. score the data on the Ray pool; the driver uploads and submits each target's best hit
        report = run_submitter(self.submit)
        self.say(6, f"submitted: {report.line()}")

        # 7. once the audit window has closed, claim what is due
        self.epochs["claim"] = self.advance_to(claimable_from(self.epochs["score"]))
        call(handle.tick.remote())
        call(handle.claim.remote())
        ledger1: Ledger = call(handle.ledger.remote())
        ledger = ledger1.since(ledger0)
        pending = list(call(handle.status.remote()).pending)
        self.say(7, f"epoch {self.epochs['claim']}: {ledger.claims} claim(s) made")
        review, paid_by_others = self.write_review(address)
        return CycleResult(
            address=address, model_id=model_id, commit_epoch=self.epochs["commit"],
            reveal_epoch=self.epochs["reveal"], active_at_reveal=active, open_targets=len(targets),
            targets_with_model=with_model, hits=report.hits, fills=list(report.fills), balance_before=before,
            balance_after=self.balance(address), stake=stake, ledger=ledger, pending=pending,
            epochs=dict(self.epochs), review=review, paid_by_others=paid_by_others,
        )

    def write_review(self, address: str) -> tuple[Path, int]:
        """The epoch review of the whole run, under the folder (`review/`): a last snapshot, then the
        ledger (read from its file: the actor has written everything it did) against the board.
        Returns its folder and what others' claims paid us."""
        from soma_ray.review.render import write_review
        from soma_ray.review.run import current_review, open_state, review_dir

        state = open_state(self.submit.driver.state_path)
        try:
            review = _sync(current_review(self.chain, state, address, self.config.review))
        finally:
            state.close()
        return write_review(review, review_dir(state.path)), review.paid_by_others  # printed after the ledger

    def train(self) -> tuple[Path, str]:
        """The exported manifest, and the step's line."""
        from soma_ray.training.trainer import run_training

        started = time.monotonic()
        outcome = run_training(self.training, export=True)
        section = self.training.training
        gpus = section.num_workers * section.gpus_per_worker if section.use_gpu else 0.0
        Records(records_path(self.submit.driver.state_path)).add_compute(
            ComputeUse(_sync(self.chain.info()).epoch, "train", time.monotonic() - started, gpus))
        if outcome.manifest is None:
            raise CycleError(f"training run {outcome.run} left no checkpoint to export; raise training.max_steps")
        steps = outcome.metrics.get("step", self.training.training.max_steps)
        return outcome.manifest, (f"trained run {outcome.run}: {steps} steps, held-out loss "
                                  f"{outcome.best_heldout_loss:.4f}; exported")


def run_cycle(config: CycleConfig, console: Console | None = None) -> CycleResult:
    """Run the whole cycle; print progress and the ledger; stop the driver actor at the end."""
    from soma_ray.driver.actor import stop_driver
    from soma_ray.runtime import configure_logging, ensure_ray, ray_log_file

    console = console or Console()
    prepare_folder(config.folder, config.cycle.fresh)
    submit, training = config.submit_config(), config.train_config()
    settings = submit.chain.sim
    configure_logging()
    console.print(f"cycle folder {config.folder} ({'fresh' if config.cycle.fresh else 'kept'})", highlight=False)
    ensure_ray()
    with ExitStack() as stack:
        display = stack.enter_context(session(console))  # closed last: its final view stays above the ledger
        display.checklist(STEP_TITLES)
        chain: Chain
        if config.cycle.served:  # every chain call through the official client and the wire
            urls = stack.enter_context(serving_in_background(_localnet_settings(settings)))
            submit, training = _through_the_wire(submit, urls), _through_the_wire(training, urls)
            chain = _sync(open_chain(submit.chain))
            display.note(f"network served at {urls.rpc_url} (soma-sdk client)")
        else:
            chain = SimChain(settings)  # genesis on first use: 4 models, their weights under sim/blobs
            if stack.enter_context(serving_blobs(settings)) is None:
                _check_served(settings)
        try:
            with actor_errors():  # e.g. the driver refusing a submission: its one line, not a traceback
                result = _Cycle(config, submit, training, chain, display).run()
        finally:
            stopped = submit.wallet.key_file.is_file() and stop_driver(submit)
            _sync(chain.close())
    console.print(f"wallet {result.address}\nmodel  {result.model_id} (committed in epoch {result.commit_epoch}, "
                  f"active from epoch {result.reveal_epoch})", highlight=False, soft_wrap=True)
    console.print(ledger_table(result))
    console.print(f"driver actor {'stopped' if stopped else 'was not running'}; everything is in {config.folder}",
                  highlight=False)
    if result.review is not None:
        console.print(f"epoch review: {result.review / 'review.md'} and {result.review / 'review.html'}",
                      highlight=False, soft_wrap=True)
    if (log_file := ray_log_file()) is not None:
        console.print(f"Ray's output and the detailed log: {log_file} (--verbose shows them here)",
                      highlight=False, soft_wrap=True)
    return replace(result, driver_stopped=stopped)


def _amount(shannons: int, sign: str = "") -> tuple[str, str]:
    return f"{sign}{shannons:,}", f"{sign}{to_soma(shannons):.9f}"


def ledger_table(result: CycleResult) -> Table:
    """Where the wallet's coins went: each line from the driver's ledger, checked against the chain."""
    led = result.ledger
    table = Table(title="ledger of this cycle")
    for column in ("", "shannons", "SOMA"):
        table.add_column(column, justify="left" if not column else "right")
    table.add_row("balance before (funded)", *_amount(result.balance_before))
    rows = [
        ("model stake", result.stake, "-"),
        ("fees (all transactions)", result.fees, "-"),
        (f"bonds locked ({led.submissions} submissions)", led.bonds_locked, "-"),
        ("bonds returned", led.bonds_returned, "+"),
        ("rewards as submitter", led.rewards_as_submitter, "+"),
        ("rewards as model owner", led.rewards_as_model_owner, "+"),
        ("claimer incentives", led.claimer_incentives, "+"),
    ]
    if result.paid_by_others:
        rows.append(("paid us by others' claims", result.paid_by_others, "+"))
    for label, value, sign in rows:
        table.add_row(label, *_amount(value, sign))
    table.add_section()
    table.add_row("expected balance", *_amount(result.expected_after))
    table.add_row("balance after (chain)", *_amount(result.balance_after))
    table.add_row("unexplained", *_amount(result.unexplained))
    table.add_section()
    table.add_row("hits / fills / claims", f"{result.hits} / {len(result.fills)} / {led.claims}", "")
    table.add_row("targets listing our model", f"{result.targets_with_model} of {result.open_targets}", "")
    table.add_row("driver actions still open", str(len(result.pending)), "")
    return table


__all__ = ["CycleError", "CycleResult", "ledger_table", "prepare_folder", "run_cycle"]
