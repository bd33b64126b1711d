"""The `soma-ray` command: thin wrappers that map subcommands to library functions."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from soma_ray.chain.base import Chain
from soma_ray.chain.factory import open_chain
from soma_ray.chain.types import TargetStatus
from soma_ray.chain.wallet import WalletError, create_key_file, load_keypair
from soma_ray.config import ConfigError, RunConfig, load_config, load_job_config
from soma_ray.config.jobs import driver_config
from soma_ray.driver.config import JobConfig
from soma_ray.job import guard_job
from soma_ray.protocol.commitments import canonical_address
from soma_ray.protocol.constants import to_soma
from soma_ray.review.commands import register as register_board_commands
from soma_ray.runtime import VERBOSE_ENV, set_verbose
from soma_ray.status import gather_status, status_table

T = TypeVar("T")
C = TypeVar("C", bound=JobConfig)
console = Console()



def hoist_options(args: list[str], takes_value: dict[str, bool]) -> list[str]:
    """`args` with every global option (and its value) moved to the front, in order: the root
    parses them wherever the user wrote them (`soma-ray status --config x.yaml`). After `--`
    nothing moves."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            rest.extend(args[i:])
            break
        name = token.partition("=")[0]
        if name in takes_value:
            inline = "=" in token
            take = 2 if takes_value[name] and not inline else 1
            hoisted.extend(args[i:i + take])
            i += take
            continue
        rest.append(token)
        i += 1
    return hoisted + rest


class GlobalOptionsGroup(TyperGroup):
    """The root command: its options are accepted before or after the subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        takes_value = {
            opt: not getattr(param, "is_flag", False)
            for param in self.params
            for opt in (*param.opts, *getattr(param, "secondary_opts", ()))
        }
        return super().parse_args(ctx, hoist_options(list(args), takes_value))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """Each command's --help also names the global options it takes (they are the root's)."""
        command = super().get_command(ctx, cmd_name)
        for each in (command, *getattr(command, "commands", {}).values()):  # a group's commands too
            if each is not None and not getattr(each, "epilog", None):
                each.epilog = GLOBAL_OPTIONS_HELP
        return command


GLOBAL_OPTIONS_HELP = (
    "Global options, before or after the command: --config/-c <recipe.yaml>, --chain sim|testnet|localnet|<rpc url>, "
    "--set a.b=value (repeatable), --verbose. See `soma-ray --help`."
)


app = typer.Typer(
    help="Take part in the SOMA network on Ray.", no_args_is_help=True, add_completion=False,
    cls=GlobalOptionsGroup,
)
wallet_app = typer.Typer(help="Create and inspect the signing wallet.", no_args_is_help=True)
targets_app = typer.Typer(help="Inspect targets.", no_args_is_help=True)
sim_app = typer.Typer(help="Drive the embedded simulated network.", no_args_is_help=True)
driver_app = typer.Typer(help="The wallet's driver actor: the one process that signs.", no_args_is_help=True)
app.add_typer(wallet_app, name="wallet")
app.add_typer(driver_app, name="driver")
app.add_typer(targets_app, name="targets")
app.add_typer(sim_app, name="sim")
stake_app = typer.Typer(help="Stake SOMA into models' pools (signed by the wallet's driver).", no_args_is_help=True)
model_app = typer.Typer(help="Our model's settings (signed by the wallet's driver).", no_args_is_help=True)
models_app = typer.Typer(help="The active models on the network (read-only).", no_args_is_help=True)
app.add_typer(stake_app, name="stake")
app.add_typer(model_app, name="model")
app.add_typer(models_app, name="models")
register_board_commands(app)  # `soma-ray board …` and `soma-ray review` (soma_ray.review.commands)


@dataclass
class Options:
    config_file: Path | None = None
    chain: str | None = None
    overrides: list[str] = field(default_factory=list)

    def load(self) -> JobConfig:
        overrides = [*self.overrides, *([f"chain.network={self.chain}"] if self.chain else [])]
        if self.config_file is None:
            return load_config(RunConfig, None, overrides)
        return load_job_config(self.config_file, overrides)


def with_chain(ctx: typer.Context, action: Callable[[JobConfig, Chain], Awaitable[T]]) -> T:
    options: Options = ctx.obj

    def go() -> T:
        config = options.load()

        async def main() -> T:
            chain = await open_chain(config.chain)
            try:
                return await action(config, chain)
            finally:
                await chain.close()

        return asyncio.run(main())

    return guard_job(go)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML recipe (see configs/)")] = None,
    chain: Annotated[
        str | None, typer.Option("--chain", help="sim | testnet | localnet | <rpc url> (default: sim)")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a config field: a.b=value (repeatable)")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help=f"show Ray's own progress and worker output too (or {VERBOSE_ENV}=1)")
    ] = False,
) -> None:
    set_verbose(verbose)
    ctx.obj = Options(config, chain, list(set_ or []))


@app.command()
def cycle(ctx: typer.Context) -> None:
    """The main job: fund, train, commit, reveal, submit and claim on a fresh simulated network; print the ledger."""
    from soma_ray.config import CycleConfig
    from soma_ray.cycle import run_cycle

    guard_job(lambda: run_cycle(load_kind(ctx.obj, CycleConfig), console))


@app.command()
def run(ctx: typer.Context) -> None:
    """Fund a new wallet, advance one epoch, print the network status (kind: run)."""
    from soma_ray.lifecycle import run_lifecycle

    options: Options = ctx.obj

    def go() -> Any:
        config = options.load()
        if not isinstance(config, RunConfig):
            raise ConfigError(f"{options.config_file}: kind: `run` needs a kind: run recipe, got {config.kind!r}")
        return asyncio.run(run_lifecycle(config))

    console.print(status_table(guard_job(go)))


def load_kind(options: Options, model: type[C]) -> C:
    """The recipe given with --config, which must be of `model`'s kind (or defaults + --set)."""
    if options.config_file is None:
        return load_config(model, None, options.overrides)
    config = options.load()
    if not isinstance(config, model) or config.kind != model.model_fields["kind"].default:
        wanted = model.model_fields["kind"].default
        raise ConfigError(f"{options.config_file}: kind: this command needs a kind: {wanted} recipe, got {config.kind!r}")
    return config


@app.command()
def submit(ctx: typer.Context) -> None:
    """Score a data source on the Ray pool and submit each target's best hit (needs a kind: submit recipe)."""
    from soma_ray.config import SubmitConfig
    from soma_ray.submission.config import check_inputs

    def go() -> str:
        config = load_kind(ctx.obj, SubmitConfig)
        check_inputs(config)  # bad input answers at once, before the scoring stack (torch, Ray) loads
        from soma_ray.submission.job import run_submitter

        return run_submitter(config).line()

    console.print(guard_job(go))


@app.command()
def train(ctx: typer.Context) -> None:
    """Train with Ray Train + DeepSpeed and export the best checkpoint; with export.commit, commit it through the wallet's driver (needs a kind: train recipe)."""
    from soma_ray.review.run import recorder_for
    from soma_ray.training.config import TrainConfig
    from soma_ray.training.rounds import train_job

    def go() -> Any:
        config = load_kind(ctx.obj, TrainConfig)
        return train_job(config, recorder_for(config))  # the driver snapshots the board each epoch

    result = guard_job(go)
    console.print("\n".join(result.lines()), highlight=False, soft_wrap=True)


@app.command()
def sweep(ctx: typer.Context) -> None:
    """Search training hyperparameters with Ray Tune; prints the trials ranked by held-out loss."""
    from soma_ray.config import SweepConfig
    from soma_ray.training.sweep import run_sweep

    guard_job(lambda: run_sweep(load_kind(ctx.obj, SweepConfig)))


@app.command()
def export(
    ctx: typer.Context,
    checkpoint: Annotated[str, typer.Argument(help="checkpoint folder or URI (e.g. s3://bucket/run/checkpoint_...)")],
    out: Annotated[Path | None, typer.Option(help="artifacts folder (default: export.dir)")] = None,
) -> None:
    """Export a training checkpoint for commit: canonical float32 weights, embedding, manifest."""
    from ray.train import Checkpoint

    from soma_ray.config import TrainConfig
    from soma_ray.training.export import export_checkpoint

    def go() -> Path:
        config = load_kind(ctx.obj, TrainConfig)
        with Checkpoint(checkpoint).as_directory() as folder:
            return export_checkpoint(Path(folder), config, out)

    console.print(f"artifacts: {guard_job(go)}", highlight=False)


@app.command()
def status(ctx: typer.Context) -> None:
    """Network, epoch, threshold, open targets and (if a wallet exists) its balance."""

    async def show(config: JobConfig, chain: Chain) -> None:
        address = _optional_address(config)
        console.print(status_table(await gather_status(chain, address)))

    with_chain(ctx, show)


def _optional_address(config: JobConfig) -> str | None:
    try:
        return canonical_address(load_keypair(config.wallet).address())
    except WalletError:
        return None


@app.command()
def localnet(ctx: typer.Context) -> None:
    """Serve the embedded network behind SOMA's wire protocol on the localnet ports (chain.localnet); Ctrl-C stops it."""
    from soma_ray.localnet import run_localnet

    options: Options = ctx.obj
    guard_job(lambda: run_localnet(options.load()))


@app.command()
def doctor(
    ctx: typer.Context,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", help="leave out a group of checks (repeatable): python, packages, env, recipe, torch, "
                     "ray, wallet, chain, storage, hf, disk, ports"),
    ] = None,
    localnet: Annotated[
        bool, typer.Option("--localnet", help="check for serving `soma-ray localnet`: its ports must be free")
    ] = False,
) -> None:
    """Check this set-up for the recipe (--config) and say what to fix, one line each; exit 0 when all it needs is fine."""
    from soma_ray.doctor import GROUPS, Level, diagnose, summary

    options: Options = ctx.obj
    unknown = sorted(set(skip or ()) - set(GROUPS))
    if unknown:
        guard_job(lambda: _raise(ConfigError(f"--skip {unknown[0]}: no such check; use one of {', '.join(GROUPS)}")))
    source = str(options.config_file) if options.config_file else "(defaults)"
    report = diagnose(options.load, source=source, skip=skip or (), serving_localnet=localnet)
    marks = {Level.OK: "ok  ", Level.INFO: "info", Level.WARN: "warn", Level.FAIL: "FAIL"}
    width = max((len(c.name) for c in report.checks), default=0)
    for check in report.scrubbed():
        console.print(f"{marks[check.level]}  {check.name:<{width}}  {check.message}", markup=False, highlight=False,
                      soft_wrap=True)
    console.print(summary(report), markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(report.status)


def _raise(error: Exception) -> None:
    raise error


@wallet_app.command("new")
def wallet_new(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="replace an existing key file")] = False,
    print_secret: Annotated[
        bool, typer.Option("--print-secret", help="print the secret once instead of writing a file")
    ] = False,
) -> None:
    """Create a wallet: the key goes to a 0600 file (or is printed once, never logged)."""
    options: Options = ctx.obj

    def go() -> None:
        config = options.load()
        if print_secret:
            from soma_sdk import Keypair

            keypair = Keypair.generate()
            # Straight to the terminal, once; export it as SOMA_SECRET_KEY and keep it safe.
            sys.stdout.write(f"address: {canonical_address(keypair.address())}\nsecret:  {keypair.to_secret_key()}\n")
            return
        keypair = create_key_file(config.wallet.key_file, force=force)
        console.print(f"address: {canonical_address(keypair.address())}\nkey file: {config.wallet.key_file} (mode 0600)")

    guard_job(go)


@wallet_app.command("show")
def wallet_show(ctx: typer.Context) -> None:
    """Address, balance and coins of the configured wallet."""

    async def show(config: JobConfig, chain: Chain) -> None:
        address = canonical_address(load_keypair(config.wallet).address())
        coins = await chain.coins(address)
        table = Table(title=f"wallet {address}")
        table.add_column("coin")
        table.add_column("SOMA", justify="right")
        for coin in coins:
            table.add_row(coin.id, f"{to_soma(coin.balance):.9f}")
        console.print(table)
        console.print(f"balance: {to_soma(sum(c.balance for c in coins)):.9f} SOMA")

    with_chain(ctx, show)


@targets_app.command("list")
def targets_list(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="open | filled | claimable | expired")] = "open",
    epoch: Annotated[int | None, typer.Option(help="generation epoch")] = None,
    limit: Annotated[int, typer.Option(help="rows to show")] = 20,
) -> None:
    """Targets with their threshold, reward and assigned models."""

    async def show(config: JobConfig, chain: Chain) -> None:
        targets = [t async for t in chain.iter_targets(TargetStatus.parse(status), epoch=epoch)]
        table = Table(title=f"{len(targets)} {status} target(s)")
        for column in ("id", "status", "epoch", "threshold", "reward SOMA", "models"):
            table.add_column(column)
        for t in targets[:limit]:
            table.add_row(
                t.id[:18] + "…", str(t.status), str(t.generation_epoch), f"{t.distance_threshold:.4f}",
                f"{to_soma(t.reward_pool):.6f}", ", ".join(m[:10] + "…" for m in t.model_ids),
            )
        console.print(table)

    with_chain(ctx, show)


@app.command()
def claim(
    ctx: typer.Context,
    target_ids: Annotated[list[str] | None, typer.Argument(help="targets to claim (default: whatever is due)")] = None,
) -> None:
    """Ask the wallet's driver to claim: our fills and our model's wins from fill epoch + 2, or the given targets."""
    from soma_ray.driver.remote import call
    from soma_ray.driver_client import wallet_driver

    def go() -> list[str]:
        handle = wallet_driver(ctx.obj.load())
        return list(call(handle.claim.remote(list(target_ids) if target_ids else None)))

    claimed = guard_job(go)
    console.print(f"claimed {len(claimed)} target(s)" + "".join(f"\n{t}" for t in claimed), highlight=False)


@app.command()
def reveal(ctx: typer.Context) -> None:
    """Ask the wallet's driver to reveal every commit whose reveal epoch (commit epoch + 1) is now."""
    from soma_ray.driver.remote import call
    from soma_ray.driver_client import wallet_driver

    revealed = guard_job(lambda: list(call(wallet_driver(ctx.obj.load()).reveal.remote())))
    console.print(f"revealed {len(revealed)} model(s)" + "".join(f"\n{m}" for m in revealed), highlight=False)


@driver_app.command("status")
def driver_status(ctx: typer.Context) -> None:
    """Address, epoch, balance, model state, next deadline, pending actions and the ledger (starts the driver if needed)."""
    from soma_ray.driver.remote import call
    from soma_ray.driver_client import status_table, wallet_driver

    console.print(status_table(guard_job(lambda: call(wallet_driver(ctx.obj.load()).status.remote()))))


@driver_app.command("stop")
def driver_stop(ctx: typer.Context) -> None:
    """Kill the wallet's driver actor (its ledger stays on disk; the next command starts a new one)."""
    from soma_ray.driver_client import stop_wallet_driver

    def go() -> tuple[str, bool]:
        config = ctx.obj.load()
        address = canonical_address(load_keypair(driver_config(config).wallet).address())
        return address, stop_wallet_driver(config)

    address, stopped = guard_job(go)
    console.print(f"{'stopped the driver of' if stopped else 'no driver running for'} {address}", highlight=False)


@sim_app.command("faucet")
def sim_faucet(
    ctx: typer.Context,
    address: Annotated[str | None, typer.Argument(help="recipient (default: the configured wallet)")] = None,
) -> None:
    """Request faucet coins (2 SOMA a request, as localnet)."""

    async def give(config: JobConfig, chain: Chain) -> None:
        recipient = address or canonical_address(load_keypair(config.wallet).address())
        coins = await chain.faucet(recipient)
        total = sum(c.balance for c in coins)
        console.print(f"sent {to_soma(total):.9f} SOMA to {recipient}; balance {to_soma(await chain.balance(recipient)):.9f}")

    with_chain(ctx, give)


@sim_app.command("advance-epoch")
def sim_advance_epoch(
    ctx: typer.Context, epochs: Annotated[int, typer.Option("--epochs", "-n", min=1)] = 1
) -> None:
    """End the current epoch now (simulated network or localnet with an admin URL)."""

    async def advance(config: JobConfig, chain: Chain) -> None:
        for _ in range(epochs):
            epoch = await chain.advance_epoch()
        info = await chain.info()
        console.print(f"epoch {epoch}: threshold {info.distance_threshold:.4f}, "
                      f"{len(await chain.all_targets(TargetStatus.OPEN))} open targets")

    with_chain(ctx, advance)


@sim_app.command("serve")
def sim_serve(
    ctx: typer.Context, port: Annotated[int, typer.Option(help="port of the blob URL")] = 9200
) -> None:
    """Serve the simulated network's blobs (genesis weights, local uploads) over HTTP."""
    from soma_ray.storage import BlobHTTPServer

    options: Options = ctx.obj
    config = guard_job(options.load)
    root_dir = config.chain.sim.blob_dir
    root_dir.mkdir(parents=True, exist_ok=True)
    server = BlobHTTPServer(root_dir, port=port)
    console.print(f"serving {root_dir} at {server.url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()


# -- acting on the board: stake, commission, models (logic in soma_ray.stakes, driver_client) ------


@stake_app.command("add")
def stake_add(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(metavar="MODEL", help="model id (0x…)")],
    amount: Annotated[str, typer.Argument(metavar="AMOUNT", help="SOMA (1.5) or shannons (1500000000shannons)")],
) -> None:
    """Stake AMOUNT into MODEL's pool (AddStakeToModel; counts from the next epoch once the model is active)."""
    from soma_ray.driver_client import stake_add as add
    from soma_ray.stakes import parse_amount, parse_id, result_line

    def go() -> str:
        model, shannons = parse_id(model_id), parse_amount(amount)  # bad input answers before Ray starts
        return result_line(add(ctx.obj.load(), model, shannons), "stake")

    console.print(guard_job(go), highlight=False)


@stake_app.command("withdraw")
def stake_withdraw(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(metavar="MODEL", help="model id (0x…)")],
    objects: Annotated[
        list[str] | None,
        typer.Option("--object", help="one StakedSoma id to withdraw (repeatable; default: all ours in MODEL)"),
    ] = None,
) -> None:
    """Withdraw our stake in MODEL: whole StakedSoma objects (the protocol has no partial withdrawal)."""
    from soma_ray.driver_client import stake_withdraw as withdraw
    from soma_ray.stakes import parse_id, result_line

    def go() -> list[str]:
        model, ids = parse_id(model_id), [parse_id(o, "StakedSoma id") for o in objects or ()]
        results = withdraw(ctx.obj.load(), model, ids)
        return [result_line(r, "withdraw") for r in results] or [f"no stake of this wallet in {model_id}"]

    console.print("\n".join(guard_job(go)), highlight=False)


@stake_app.command("list")
def stake_list(ctx: typer.Context) -> None:
    """Our StakedSoma objects per model (read from the chain)."""
    from soma_ray.stakes import our_stakes, stakes_table

    async def show(config: JobConfig, chain: Chain) -> None:
        address = canonical_address(load_keypair(config.wallet).address())
        console.print(stakes_table(await our_stakes(chain, address), (await chain.info()).epoch))

    with_chain(ctx, show)


@model_app.command("commission")
def model_commission(
    ctx: typer.Context,
    rate: Annotated[str, typer.Argument(metavar="RATE", help="basis points, 0..10000 (250 = 2.5%)")],
    model_id: Annotated[str | None, typer.Option("--model", help="model id (default: the driver's model)")] = None,
) -> None:
    """Set our model's commission to RATE bps from the next epoch (SetModelCommissionRate; Active models only)."""
    from soma_ray.driver_client import set_commission
    from soma_ray.stakes import parse_id, parse_rate, result_line

    def go() -> str:
        bps = parse_rate(rate)
        model = parse_id(model_id) if model_id else None
        return result_line(set_commission(ctx.obj.load(), bps, model), "commission")

    console.print(guard_job(go), highlight=False)


@models_app.command("list")
def models_list(ctx: typer.Context) -> None:
    """Every active model: id, owner, stake, commission (ours marked *)."""
    from soma_ray.stakes import models_table

    async def show(config: JobConfig, chain: Chain) -> None:
        console.print(models_table(await chain.active_models(), _optional_address(config)))

    with_chain(ctx, show)


@models_app.command("show")
def models_show(
    ctx: typer.Context, model_id: Annotated[str, typer.Argument(metavar="ID", help="model id (0x…)")]
) -> None:
    """One model in any state: owner, status, stake, commission (now and staged), weights, our stake in it."""
    from soma_ray.stakes import model_table, parse_id

    async def show(config: JobConfig, chain: Chain) -> None:
        wanted = parse_id(model_id)
        address = _optional_address(config)
        ours = [s for s in await chain.staked_soma(address) if s.model_id == wanted] if address else []
        console.print(model_table(await chain.get_model(wanted), address, ours))

    with_chain(ctx, show)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
