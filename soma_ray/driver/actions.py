"""The driver's actions as types: their states, their kinds and one payload dataclass per kind.

The ledger (`state.py`) stores kinds and states as their string values and payloads as JSON
objects; the values and the JSON keys are the ledger's file format, so they do not change.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Generic, Self, TypeVar


class ActionStatus(StrEnum):
    """Where an action stands (stored as the value)."""

    INTENDED = "intended"  # recorded, maybe sent
    DONE = "done"
    WAITING = "waiting"  # retry later, e.g. AuditWindowOpen
    FAILED = "failed"  # final
    INTERRUPTED = "interrupted"  # reconciliation found it never landed; it may be tried again


# An action in one of these states is live: a second request for it sends nothing.
LIVE_STATUSES = (ActionStatus.INTENDED, ActionStatus.DONE, ActionStatus.WAITING)
# Nothing more happens to an action in one of these states.
SETTLED_STATUSES = (ActionStatus.DONE, ActionStatus.FAILED)
# Still to be acted on (what `status` lists as pending).
PENDING_STATUSES = (ActionStatus.INTENDED, ActionStatus.WAITING, ActionStatus.INTERRUPTED)
OPEN_STATUSES = (ActionStatus.INTENDED, ActionStatus.WAITING)


class ActionKind(StrEnum):
    SUBMIT = "submit"
    CREATE_MODEL = "create_model"
    COMMIT = "commit"
    REVEAL = "reveal"
    CLAIM = "claim"
    MERGE = "merge"
    SPLIT = "split"
    STAKE = "stake"
    WITHDRAW = "withdraw_stake"
    COMMISSION = "commission"


@dataclass(frozen=True)
class Payload:
    """What an action records. Optional fields that are None are left out of the JSON (they are
    filled in when the action finishes: a submission's fill epoch, a commit's epoch)."""

    KIND: ClassVar[ActionKind]

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if not (getattr(self, f.name) is None and f.default is None)
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class SubmitPayload(Payload):
    KIND: ClassVar[ActionKind] = ActionKind.SUBMIT

    target_id: str
    url: str
    size: int
    checksum: str
    model_id: str
    distance: float
    loss: float
    fill_epoch: int | None = None  # set once it landed


@dataclass(frozen=True)
class CreateModelPayload(Payload):
    KIND: ClassVar[ActionKind] = ActionKind.CREATE_MODEL

    stake: int
    model_id: str | None = None  # set once created


@dataclass(frozen=True)
class CommitPayload(Payload):
    KIND: ClassVar[ActionKind] = ActionKind.COMMIT

    model_id: str
    url: str
    checksum: str  # of the encrypted weights
    size: int
    decryption_key: str
    embedding: list[float]
    manifest_path: str
    update: bool = False  # the model was already active: this commits an update
    heldout_loss: float | None = None
    commit_epoch: int | None = None  # set once sent


@dataclass(frozen=True)
class RevealPayload(Payload):
    KIND: ClassVar[ActionKind] = ActionKind.REVEAL

    model_id: str
    checksum: str | None = None  # the commit's (absent when the reveal epoch was missed)


@dataclass(frozen=True)
class ClaimPayload(Payload):
    KIND: ClassVar[ActionKind] = ActionKind.CLAIM

    target_id: str
    fill_epoch: int | None
    as_submitter: int = 0
    as_model_owner: int = 0
    as_claimer: int = 0
    bond_returned: int = 0


@dataclass(frozen=True)
class MergePayload(Payload):
    KIND: ClassVar[ActionKind] = ActionKind.MERGE

    coins: int


@dataclass(frozen=True)
class SplitPayload(Payload):
    KIND: ClassVar[ActionKind] = ActionKind.SPLIT

    coins: int
    share: int


@dataclass(frozen=True)
class StakePayload(Payload):
    """AddStakeToModel of `amount` shannons. `before`: our StakedSoma ids when it was recorded (a lost
    answer is found as a new one)."""

    KIND: ClassVar[ActionKind] = ActionKind.STAKE

    model_id: str
    amount: int
    before: list[str] = dataclasses.field(default_factory=list)
    staked_id: str | None = None  # set once it landed


@dataclass(frozen=True)
class WithdrawPayload(Payload):
    """WithdrawStake of one whole StakedSoma object (§5): `principal` comes back as a coin."""

    KIND: ClassVar[ActionKind] = ActionKind.WITHDRAW

    staked_id: str
    model_id: str | None
    principal: int


@dataclass(frozen=True)
class CommissionPayload(Payload):
    """SetModelCommissionRate: `rate` bps staged in `epoch`, in force from the next (§5)."""

    KIND: ClassVar[ActionKind] = ActionKind.COMMISSION

    model_id: str
    rate: int


PAYLOADS: dict[ActionKind, type[Payload]] = {
    cls.KIND: cls
    for cls in (SubmitPayload, CreateModelPayload, CommitPayload, RevealPayload, ClaimPayload, MergePayload,
                SplitPayload, StakePayload, WithdrawPayload, CommissionPayload)
}


def payload_from_json(kind: str, text: str) -> Payload:
    return PAYLOADS[ActionKind(kind)].from_dict(json.loads(text))


P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class Action(Generic[P]):
    """One row of the ledger, its payload typed by its kind."""

    key: str
    kind: ActionKind
    status: ActionStatus
    epoch: int
    payload: P
    digest: str | None
    fee: int
    amount: int
    error: str | None
    attempts: int


__all__ = [
    "LIVE_STATUSES", "OPEN_STATUSES", "PAYLOADS", "PENDING_STATUSES", "SETTLED_STATUSES", "Action", "ActionKind",
    "ActionStatus", "ClaimPayload", "CommitPayload", "CreateModelPayload", "MergePayload", "Payload", "RevealPayload",
    "SplitPayload", "StakePayload", "SubmitPayload", "WithdrawPayload", "CommissionPayload", "payload_from_json",
]
