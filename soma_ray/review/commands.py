"""The `soma-ray board` command group and `soma-ray review`: thin, the work is in `summary`, `run`
and `render`. The recipe's own wallet, ledger and chain (a cycle recipe's under its folder).
Board and plotting modules are imported when a command runs (`soma-ray --help` stays light)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from soma_ray.chain.base import Chain
from soma_ray.chain.factory import open_chain
from soma_ray.chain.wallet import WalletError, load_keypair
from soma_ray.config.jobs import driver_config, review_settings
from soma_ray.driver.config import JobConfig
from soma_ray.job import guard_job
from soma_ray.protocol.commitments import canonical_address
from soma_ray.review.config import ReviewSection

T = TypeVar("T")
console = Console()
board_app = typer.Typer(help="Read the board: models, targets, winners; the map; the assignment simulator.")


def _address(config: JobConfig) -> str | None:
    try:
        return canonical_address(load_keypair(config.wallet).address())
    except WalletError:
        return None


def _on_chain(ctx: typer.Context, action: Callable[[JobConfig, ReviewSection, Chain], Awaitable[T]]) -> T:
    """Run `action` with the recipe's driver config (its ledger's folder), review section and chain."""

    def go() -> T:
        recipe = ctx.obj.load()
        config = driver_config(recipe)

        async def main() -> T:
            chain = await open_chain(config.chain)
            try:
                return await action(config, review_settings(recipe), chain)
            finally:
                await chain.close()

        return asyncio.run(main())

    return guard_job(go)


@board_app.callback(invoke_without_command=True)
def board(ctx: typer.Context) -> None:
    """Take a snapshot of the board now (kept beside the driver's ledger, in board/) and print the summary tables."""
    if ctx.invoked_subcommand is not None:
        return

    from soma_ray.review.run import board_dir, record_snapshot
    from soma_ray.review.summary import history, summary_tables

    async def show(config: JobConfig, settings: ReviewSection, chain: Chain) -> None:
        await record_snapshot(chain, config.driver.state_path)
        past = history(board_dir(config.driver.state_path), settings.epochs)
        for table in summary_tables(past[-1], past, _address(config)):
            console.print(table)

    _on_chain(ctx, show)


@board_app.command("map")
def board_map(
    ctx: typer.Context, out: Annotated[Path, typer.Option("--out", help="PNG file to write")] = Path("board-map.png"),
) -> None:
    """Write the map: models (size: stake, colour: owner, ours ringed) and open targets, on their two main directions."""

    from soma_ray.board.plots import map_png
    from soma_ray.review.run import board_dir, record_snapshot
    from soma_ray.review.summary import history

    async def draw(config: JobConfig, settings: ReviewSection, chain: Chain) -> Path:
        await record_snapshot(chain, config.driver.state_path)
        snapshot = history(board_dir(config.driver.state_path), 1)[-1]
        address = _address(config)
        return map_png(snapshot, out, ours={address} if address else set())

    console.print(f"map: {_on_chain(ctx, draw)}", highlight=False)


@board_app.command("simulate")
def board_simulate(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", help="an active model's id (its embedding and stake)")] = None,
    embedding: Annotated[Path | None, typer.Option("--embedding", help=".npy or JSON list: a new model's embedding")]
    = None,
    stake: Annotated[float | None, typer.Option("--stake", help="stake in SOMA (with --model: what if)")] = None,
    rival: Annotated[list[str] | None, typer.Option("--rival", help="EMBEDDING_FILE:STAKE_SOMA entering too")] = None,
    draws: Annotated[int, typer.Option("--draws", min=10, help="simulated targets")] = 1000,
) -> None:
    """Which share of targets a model (or a new embedding with a stake) would be assigned, and what it could earn."""

    from soma_ray.review.run import board_dir, record_snapshot
    from soma_ray.review.summary import SimulateArgs, history, simulate_lines

    async def simulate(config: JobConfig, settings: ReviewSection, chain: Chain) -> list[str]:
        await record_snapshot(chain, config.driver.state_path)
        past = history(board_dir(config.driver.state_path), settings.epochs)
        return simulate_lines(past[-1], past, SimulateArgs(model, embedding, stake, rival or [], draws))

    for line in _on_chain(ctx, simulate):
        console.print(line, highlight=False, soft_wrap=True)


def review(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", help="folder to write (default: review/ beside the ledger)")]
    = None,
    epoch: Annotated[int | None, typer.Option("--epoch", help="review as of this epoch (default: now)")] = None,
) -> None:
    """The epoch review: wins, misses, near misses, P&L per epoch by role, rivals, alerts and actions (Markdown + HTML)."""

    from soma_ray.review.run import open_state, review_dir, review_now

    async def write(config: JobConfig, settings: ReviewSection, chain: Chain) -> Path:
        address = _address(config)
        if address is None:
            raise WalletError(f"no wallet at {config.wallet.key_file}: the review is of a wallet's results")
        state = open_state(config.driver.state_path)
        try:
            return await review_now(chain, state, address, settings, out or review_dir(state.path), epoch)
        finally:
            state.close()

    folder = _on_chain(ctx, write)
    console.print(f"review: {folder / 'review.md'}\n        {folder / 'review.html'}", highlight=False)


def register(app: Any) -> None:
    """Add `board` and `review` to the root command."""
    app.add_typer(board_app, name="board")
    app.command("review")(review)
