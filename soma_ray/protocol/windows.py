"""Epoch windows: when a model must commit and reveal, when a target can be filled, audited and
claimed (protocol.md §3.4, §4.4, §5, §6). Pure functions of epoch numbers.
"""

from __future__ import annotations

# A model revealed in exactly commit_epoch + REVEAL_DELAY (§5).
REVEAL_DELAY = 1
# A created model must commit by the end of create_epoch + COMMIT_GRACE, or it is slashed (§5).
COMMIT_GRACE = 1
# Validators may report a fill during the AUDIT_WINDOW epochs after the fill epoch (§4.4, §6).
AUDIT_WINDOW = 1


# -- models (§5) ---------------------------------------------------------------------------


def reveal_epoch(commit_epoch: int) -> int:
    """The one epoch in which a commit made in `commit_epoch` can be revealed."""
    return commit_epoch + REVEAL_DELAY


def reveal_missed(commit_epoch: int, epoch: int) -> bool:
    """True once `epoch` is past the reveal epoch (a pending model is then slashed, an update cancelled)."""
    return epoch > reveal_epoch(commit_epoch)


def commit_missed(create_epoch: int, epoch: int) -> bool:
    """True once a Created model has let its create epoch and the next pass without a commit."""
    return epoch > create_epoch + COMMIT_GRACE


def stake_activation_epoch(epoch: int) -> int:
    """A StakedSoma object minted in `epoch` counts from the next epoch."""
    return epoch + 1


# -- targets (§3.4, §4.4, §6) ----------------------------------------------------------------


def target_open(generation_epoch: int, epoch: int) -> bool:
    """An open target takes submissions only in its generation epoch (later it is expired)."""
    return epoch == generation_epoch


def target_expired(generation_epoch: int, epoch: int) -> bool:
    """An unfilled target is expired (and claimable) once its generation epoch has passed."""
    return epoch > generation_epoch


def audit_epoch(fill_epoch: int) -> int:
    """The last epoch of a fill's audit window (validators report in fill_epoch + 1)."""
    return fill_epoch + AUDIT_WINDOW


def claimable_from(fill_epoch: int) -> int:
    """The first epoch in which a filled target can be claimed: fill_epoch + 2."""
    return audit_epoch(fill_epoch) + 1


def audit_window_open(fill_epoch: int, epoch: int) -> bool:
    """True while a filled target cannot be claimed yet (the chain answers AuditWindowOpen)."""
    return epoch < claimable_from(fill_epoch)


def latest_claimable_fill_epoch(epoch: int) -> int:
    """In `epoch`, targets filled in this epoch or earlier are past their audit window."""
    return epoch - AUDIT_WINDOW - 1
