"""Model staking pools: withdrawing a StakedSoma object and staging a commission rate
(protocol.md §5, §13.3; [S] `authority/src/execution/staking.rs`, `types/src/system_state/staking.rs`,
`types/src/system_state/mod.rs` at the pinned commit).

A stake is a whole `StakedSoma` object: `WithdrawStake{staked_soma}` takes the object and pays a new
coin; the protocol has no partial withdrawal and no split of a StakedSoma (no such transaction kind).
"""

from __future__ import annotations

from enum import StrEnum

from soma_ray.protocol.constants import MAX_COMMISSION_BPS


class WithdrawEffect(StrEnum):
    """What a withdrawal does to the model's pool (`StakingPool::request_withdraw_stake`)."""

    # The stake was added this epoch (activation epoch still ahead): it leaves the pool's pending
    # stake. A pre-active pool (Created/Pending model) had counted it at once, so on chain its
    # pending stake goes below zero (u64, wrapping) and the balance drops at the next boundary.
    PENDING_STAKE = "pending_stake"
    # The pool is deactivated (an inactive or slashed model): processed at once, the balance drops now.
    NOW = "now"
    # Otherwise the withdrawal waits for the next epoch boundary (`process_pending_stake_withdraw`).
    NEXT_EPOCH = "next_epoch"


def withdraw_effect(stake_activation_epoch: int, epoch: int, *, pool_inactive: bool) -> WithdrawEffect:
    if stake_activation_epoch > epoch:
        return WithdrawEffect.PENDING_STAKE
    return WithdrawEffect.NOW if pool_inactive else WithdrawEffect.NEXT_EPOCH


def withdrawn_amount(principal: int) -> int:
    """What a withdrawal pays: the principal. A pool pays principal + min(its rewards, rewards_pool)
    and model pools earn no rewards (§5: nothing deposits into them), so slashes of the pool's
    balance do not reduce it either."""
    return principal


def commission_rate_error(rate: int) -> str | None:
    """Why `rate` (bps) is not a commission rate the chain accepts, or None: 0..10000
    (`ModelCommissionRateTooHigh` above; u64 on the wire, so never negative)."""
    if rate < 0:
        return f"commission rate {rate} bps is negative; give 0..{MAX_COMMISSION_BPS} bps"
    if rate > MAX_COMMISSION_BPS:
        return f"commission rate {rate} bps is above {MAX_COMMISSION_BPS} (100%); give 0..{MAX_COMMISSION_BPS} bps"
    return None


def commission_effective_epoch(epoch: int) -> int:
    """SetModelCommissionRate in `epoch` stages `next_epoch_commission_rate`; the epoch change into
    epoch + 1 copies it to `commission_rate` (§5, `advance_epoch_models` step 5)."""
    return epoch + 1
