"""P&L per epoch from the driver's ledger: what each epoch's actions moved, by role.

Cash basis: an action counts in the epoch it was recorded in (a claim's rewards in the claim's
epoch, a submission's bond and fee in the submission's), with the ledger's own rules
(`DriverState.ledger`): amounts of actions that are done, fees of every action. So the epochs add
up to the ledger's totals exactly. Compute cost (GPU hours × `review.gpu_hour_cost`) counts in
the epoch the job ended in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

from soma_ray.driver.actions import Action, ActionStatus, ClaimPayload, CreateModelPayload, Payload, SubmitPayload
from soma_ray.driver.results import Ledger
from soma_ray.protocol.constants import SHANNONS_PER_SOMA
from soma_ray.review.records import ComputeUse


@dataclass(frozen=True)
class EpochPnl:
    """Shannons (counts for submissions and claims)."""

    epoch: int
    submissions: int = 0
    claims: int = 0
    model_stake: int = 0
    bonds_locked: int = 0
    bonds_returned: int = 0
    rewards_as_submitter: int = 0
    rewards_as_model_owner: int = 0
    claimer_incentives: int = 0
    fees: int = 0
    gpu_hours: float = 0.0
    compute_cost: int = 0

    @property
    def rewards(self) -> int:
        return self.rewards_as_submitter + self.rewards_as_model_owner + self.claimer_incentives

    @property
    def pnl(self) -> int:
        """Rewards less fees and compute: bonds come back and stake stays ours, so neither counts."""
        return self.rewards - self.fees - self.compute_cost

    @property
    def cash(self) -> int:
        """What the wallet's balance moved (compute is paid elsewhere)."""
        return self.rewards + self.bonds_returned - self.bonds_locked - self.fees - self.model_stake


def compute_cost(gpu_hours: float, gpu_hour_cost: float | None) -> int:
    """Shannons for `gpu_hours` at `gpu_hour_cost` SOMA an hour (0 when no price is set)."""
    return 0 if gpu_hour_cost is None else round(gpu_hours * gpu_hour_cost * SHANNONS_PER_SOMA)


def pnl_by_epoch(actions: Iterable[Action[Payload]], compute: Sequence[ComputeUse] = (),
                 gpu_hour_cost: float | None = None, *, until: int | None = None) -> list[EpochPnl]:
    """One row per epoch with an action or a compute record (up to `until`), in order."""
    rows: dict[int, dict[str, float]] = {}

    def add(epoch: int, **amounts: float) -> None:
        row = rows.setdefault(epoch, {})
        for name, value in amounts.items():
            row[name] = row.get(name, 0) + value

    for a in actions:
        add(a.epoch, fees=a.fee)
        if a.status != ActionStatus.DONE:
            continue
        p = a.payload
        if isinstance(p, SubmitPayload):
            add(a.epoch, submissions=1, bonds_locked=a.amount)
        elif isinstance(p, CreateModelPayload):
            add(a.epoch, model_stake=a.amount)
        elif isinstance(p, ClaimPayload):
            add(a.epoch, claims=1, bonds_returned=p.bond_returned, rewards_as_submitter=p.as_submitter,
                rewards_as_model_owner=p.as_model_owner, claimer_incentives=p.as_claimer)
    for use in compute:
        add(use.epoch, gpu_hours=use.gpu_hours)
    result = []
    for epoch in sorted(rows):
        if until is not None and epoch > until:
            continue
        row = rows[epoch]
        hours = float(row.pop("gpu_hours", 0.0))
        ints = {k: int(v) for k, v in row.items()}
        result.append(EpochPnl(epoch=epoch, gpu_hours=hours, compute_cost=compute_cost(hours, gpu_hour_cost), **ints))
    return result


def total(rows: Sequence[EpochPnl]) -> EpochPnl:
    """The sum of the rows (epoch −1)."""
    sums: dict[str, float] = {}
    for row in rows:
        for f in fields(row):
            if f.name != "epoch":
                sums[f.name] = sums.get(f.name, 0) + getattr(row, f.name)
    hours = float(sums.pop("gpu_hours", 0.0))
    return EpochPnl(epoch=-1, gpu_hours=hours, **{k: int(v) for k, v in sums.items()})


def as_ledger(row: EpochPnl, start_balance: int = 0) -> Ledger:
    """A P&L row in the ledger's own terms (to compare with `DriverState.ledger()`)."""
    return Ledger(
        start_balance=start_balance, model_stake=row.model_stake, submissions=row.submissions,
        bonds_locked=row.bonds_locked, bonds_returned=row.bonds_returned,
        rewards_as_submitter=row.rewards_as_submitter, rewards_as_model_owner=row.rewards_as_model_owner,
        claimer_incentives=row.claimer_incentives, claims=row.claims, fees=row.fees,
    )
