"""Acting on the board, for people: amounts and commission rates as typed on a command line, and
the read-only views of `soma-ray stake list`, `soma-ray models list|show` (read from the chain
directly; the commands that sign go through the wallet's driver, `driver_client`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from rich.table import Table

from soma_ray.chain.base import Chain
from soma_ray.chain.types import ActiveModel, ModelInfo, StakedSoma
from soma_ray.driver.results import StakeResult
from soma_ray.errors import InputError
from soma_ray.protocol.commitments import canonical_address
from soma_ray.protocol.constants import SHANNONS_PER_SOMA, to_soma
from soma_ray.protocol.staking import commission_rate_error

_AMOUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(soma|shannons?)?\s*$", re.IGNORECASE)
AMOUNT_HELP = "SOMA with up to 9 decimals (1.5 or 1.5SOMA), or shannons with the suffix (1500000000shannons)"


class StakeInputError(InputError):
    """An amount, rate or id typed on a command line that is not one."""


def parse_id(text: str, what: str = "model id") -> str:
    """An object id or address as the chain writes it (`0x` + 64 hex digits)."""
    try:
        return canonical_address(text)
    except ValueError:
        raise StakeInputError(f"{what} {text!r} is not an id: give 0x followed by up to 64 hex digits") from None


def parse_amount(text: str) -> int:
    """Shannons from `text`: SOMA by default (exact, at most 9 decimals), shannons with the suffix."""
    match = _AMOUNT.match(text)
    if match is None:
        raise StakeInputError(f"amount {text!r} is not a number; give {AMOUNT_HELP}")
    number, unit = match.group(1), (match.group(2) or "soma").lower()
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise StakeInputError(f"amount {text!r} is not a number; give {AMOUNT_HELP}") from None
    shannons = value if unit.startswith("shannon") else value * SHANNONS_PER_SOMA
    if shannons != shannons.to_integral_value():
        what = "shannons are whole" if unit.startswith("shannon") else "SOMA has at most 9 decimals"
        raise StakeInputError(f"amount {text!r} is not a whole number of shannons ({what})")
    if shannons <= 0:
        raise StakeInputError(f"amount {text!r} must be more than zero")
    return int(shannons)


def parse_rate(text: str) -> int:
    """A commission rate in basis points (0..10000; 250 = 2.5%)."""
    try:
        rate = int(text.strip())
    except ValueError:
        raise StakeInputError(f"commission rate {text!r} is not a whole number of basis points; e.g. 250 = 2.5%") from None
    problem = commission_rate_error(rate)
    if problem is not None:
        raise StakeInputError(problem)
    return rate


def soma(shannons: int) -> str:
    return f"{to_soma(shannons):.9f}"


# -- stake list ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelStake:
    """Our StakedSoma objects in one pool."""

    model_id: str | None
    objects: list[StakedSoma]

    @property
    def principal(self) -> int:
        return sum(s.principal for s in self.objects)


async def our_stakes(chain: Chain, address: str) -> list[ModelStake]:
    by_model: dict[str | None, list[StakedSoma]] = defaultdict(list)
    for stake in await chain.staked_soma(address):
        by_model[stake.model_id].append(stake)
    return [ModelStake(m, sorted(objs, key=lambda s: s.id)) for m, objs in sorted(by_model.items(), key=lambda kv: str(kv[0]))]


def stakes_table(stakes: list[ModelStake], epoch: int) -> Table:
    table = Table(title=f"our stakes (epoch {epoch}; each object is withdrawn whole)")
    for column in ("model", "StakedSoma", "SOMA", "counts from epoch"):
        table.add_column(column, justify="right" if column == "SOMA" else "left")
    for pool in stakes:
        for stake in pool.objects:
            table.add_row(pool.model_id or f"pool {stake.pool_id}", stake.id, soma(stake.principal),
                          str(stake.stake_activation_epoch))
    total = sum(p.principal for p in stakes)
    table.caption = f"{sum(len(p.objects) for p in stakes)} object(s), {soma(total)} SOMA in {len(stakes)} pool(s)"
    return table


# -- models list / show -------------------------------------------------------------------------


def _rate(rate: int, staged: int) -> str:
    text = f"{rate / 100:g}%"
    return text if staged == rate else f"{text} → {staged / 100:g}% next epoch"


def models_table(models: list[ActiveModel], ours: str | None) -> Table:
    """Every active model: id, owner, stake, commission; ours marked with *."""
    mine = canonical_address(ours) if ours else None
    table = Table(title=f"{len(models)} active model(s)" + (" (* ours)" if mine else ""))
    for column in ("", "model", "owner", "stake SOMA", "commission"):
        table.add_column(column, justify="right" if column == "stake SOMA" else "left")
    for m in sorted(models, key=lambda m: (-m.stake, m.model_id)):
        marker = "*" if mine is not None and canonical_address(m.owner) == mine else ""
        table.add_row(marker, m.model_id, canonical_address(m.owner), soma(m.stake),
                      _rate(m.commission_rate, m.next_epoch_commission_rate))
    return table


def model_table(model: ModelInfo, ours: str | None, stakes: list[StakedSoma]) -> Table:
    owner = canonical_address(model.owner)
    mine = ours is not None and canonical_address(ours) == owner
    rows = [
        ("model", model.model_id),
        ("owner", owner + (" (ours)" if mine else "")),
        ("status", model.status.value),
        ("stake", f"{soma(model.stake)} SOMA"),
        ("commission", _rate(model.commission_rate, model.next_epoch_commission_rate)),
        ("created in epoch", str(model.create_epoch)),
        ("pending update", f"committed in epoch {model.pending_commit_epoch}" if model.has_pending_update else "no"),
        ("weights", model.manifest.url if model.manifest else "not committed"),
        ("our stake here", f"{soma(sum(s.principal for s in stakes))} SOMA in {len(stakes)} object(s)"),
    ]
    table = Table(title=f"model {model.model_id}", show_header=False)
    for key, value in rows:
        table.add_row(key, value)
    return table


def result_line(result: StakeResult, what: str) -> str:
    amount = f"{result.amount} bps" if what == "commission" else f"{soma(result.amount)} SOMA"
    line = f"{what} {amount} on {result.model_id}: {result.status.value}"
    if result.fee:
        line += f", fee {result.fee} shannons"
    if result.error:
        line += f" ({result.error})"
    return line


__all__ = [
    "AMOUNT_HELP", "ModelStake", "StakeInputError", "model_table", "models_table", "our_stakes", "parse_amount", "parse_id",
    "parse_rate", "result_line", "stakes_table",
]
