"""What the driver answers (directly, or through its Ray actor, pickled): plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from soma_ray.chain.types import ModelStatus
from soma_ray.driver.actions import ActionStatus


@dataclass(frozen=True)
class Ledger:
    """The ledger's running totals, in shannons (counts for submissions and claims)."""

    start_balance: int = 0  # the wallet's balance when its driver first started
    model_stake: int = 0
    staked: int = 0  # added to models' pools (AddStakeToModel)
    unstaked: int = 0  # principals withdrawn back to coins (WithdrawStake)
    submissions: int = 0
    bonds_locked: int = 0
    bonds_returned: int = 0
    rewards_as_submitter: int = 0
    rewards_as_model_owner: int = 0
    claimer_incentives: int = 0
    claims: int = 0
    fees: int = 0

    @property
    def rewards(self) -> int:
        return self.rewards_as_submitter + self.rewards_as_model_owner + self.claimer_incentives

    @property
    def expected_balance(self) -> int:
        """The wallet's balance as the ledger explains it: the chain's must equal it to the
        shannon while nothing is in flight and the driver is the wallet's only signer."""
        return (self.start_balance - self.model_stake - self.staked + self.unstaked - self.fees - self.bonds_locked
                + self.bonds_returned + self.rewards)

    def since(self, earlier: Ledger) -> Ledger:
        """What happened between `earlier` and this ledger (the start balance is this one's)."""
        diff = {f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)}
        return Ledger(**{**diff, "start_balance": self.start_balance})


@dataclass(frozen=True)
class DriverStatus:
    address: str
    network: str
    epoch: int
    balance: int
    model_id: str | None
    model_status: ModelStatus | None
    pending: list[str]  # keys of the actions still open (intended, waiting, interrupted)
    next_deadline: str | None  # e.g. "reveal <model> in epoch 7"
    ledger: Ledger
    dry_run: bool


@dataclass(frozen=True)
class CommitResult:
    model_id: str
    status: ActionStatus  # of the commit action (done, or intended when it is still being sent)
    key: str  # its ledger key


@dataclass(frozen=True)
class StakeResult:
    """One staking action as the ledger holds it: `amount` is the shannons staked or withdrawn
    (the rate in bps for a commission)."""

    key: str
    status: ActionStatus
    model_id: str | None
    amount: int
    fee: int
    digest: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class TickResult:
    """What a new epoch made the driver do."""

    revealed: list[str] = field(default_factory=list)  # model ids
    claimed: list[str] = field(default_factory=list)  # target ids


__all__ = ["CommitResult", "DriverStatus", "Ledger", "StakeResult", "TickResult"]
