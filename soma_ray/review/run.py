"""The review from what lies beside the driver's ledger (`driver.state_path`): board snapshots in
`board/`, the jobs' `records.db`, the ledger itself; written to a folder (`review/` by default).

`EpochRecorder` is the driver actor's hook: on every new epoch it stores a board snapshot and,
with `review.every_epoch`, writes the review.
"""

from __future__ import annotations

import logging
from pathlib import Path

from soma_ray.board.snapshot import SnapshotError, SnapshotStore, take_snapshot
from soma_ray.chain.base import Chain
from soma_ray.driver.config import JobConfig
from soma_ray.driver.driver import Driver
from soma_ray.driver.state import DriverState
from soma_ray.errors import SomaRayError
from soma_ray.review.build import Review, build_review
from soma_ray.review.config import ReviewSection
from soma_ray.review.records import Records, records_path

log = logging.getLogger("soma_ray.review")


class ReviewError(SomaRayError):
    """Nothing to review yet, or its files cannot be read."""


def board_dir(state_path: Path) -> Path:
    return Path(state_path).parent / "board"


def review_dir(state_path: Path) -> Path:
    return Path(state_path).parent / "review"


async def record_snapshot(chain: Chain, state_path: Path) -> int:
    """Read the board now and store it beside the ledger; returns its epoch."""
    snapshot = await take_snapshot(chain)
    SnapshotStore(board_dir(state_path)).write(snapshot)
    return snapshot.epoch


def review_of(state: DriverState, address: str, settings: ReviewSection, *, balance: int | None = None,
              epoch: int | None = None) -> Review:
    store = SnapshotStore(board_dir(state.path))
    epochs = [e for e in store.epochs() if epoch is None or e <= epoch][-settings.epochs:]
    if not epochs:
        raise ReviewError(f"no board snapshot{'' if epoch is None else f' of epoch {epoch} or before'} under "
                          f"{store.root}: the driver takes one at each new epoch (or run `soma-ray board`)")
    try:
        history = store.read_all(epochs)
    except SnapshotError as err:
        raise ReviewError(str(err)) from err
    records = Records(records_path(state.path))
    return build_review(history, address=address, actions=state.actions(), ledger=state.ledger(),
                        settings=settings, near_misses=records.near_misses(), compute=records.compute(),
                        balance=balance, epoch=epoch)


def open_state(state_path: Path) -> DriverState:
    if not Path(state_path).is_file():
        raise ReviewError(f"no driver ledger at {state_path}: run a job with this recipe first (the review reads "
                          "what its driver recorded)")
    return DriverState(state_path)


async def review_now(chain: Chain, state: DriverState, address: str, settings: ReviewSection, out: Path,
                     epoch: int | None = None) -> Path:
    """Snapshot the board now (unless reviewing a past epoch), then write the review to `out`."""
    from soma_ray.review.render import write_review  # matplotlib: only where a review is written

    return write_review(await current_review(chain, state, address, settings, epoch), out)


async def current_review(chain: Chain, state: DriverState, address: str, settings: ReviewSection,
                         epoch: int | None = None) -> Review:
    """The review as of now, after a snapshot of the board now (or as of a past `epoch`)."""
    current = (await chain.info()).epoch
    if epoch is None or epoch >= current:
        await record_snapshot(chain, state.path)
        epoch = None
    balance = await chain.balance(address) if epoch is None else None
    return review_of(state, address, settings, balance=balance, epoch=epoch)


class EpochRecorder:
    """The driver actor's hook at each new epoch (pickled into the actor: plain settings only)."""

    def __init__(self, settings: ReviewSection) -> None:
        self.settings = settings

    async def __call__(self, driver: Driver) -> None:
        path = driver.state.path
        epoch = await record_snapshot(driver.chain, path)
        log.info("board snapshot of epoch %d in %s", epoch, board_dir(path))
        if self.settings.every_epoch:
            from soma_ray.review.render import write_review

            out = write_review(review_of(driver.state, driver.address, self.settings,
                                         balance=await driver.chain.balance(driver.address)), review_dir(path))
            log.info("review of epoch %d in %s", epoch, out)


def recorder_for(config: JobConfig) -> EpochRecorder:
    """The hook for a job's driver actor, with the recipe's `review:` settings (defaults for kinds
    without the section)."""
    from soma_ray.config.jobs import review_settings

    return EpochRecorder(review_settings(config))
