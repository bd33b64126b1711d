"""Transaction fees and the value-fee adjustment (protocol.md §4.3).

A transaction pays `base_fee` (even when it fails), `write_object_fee` per object it writes
(on success) and a value fee proportional to the SOMA it moves. Amounts are in shannons.
"""

from __future__ import annotations

from dataclasses import dataclass

from soma_ray.protocol.constants import BPS, ProtocolParams, bps_mul


@dataclass(frozen=True)
class FeeParts:
    """A transaction's fee as the chain reports it (`TransactionFee{base_fee, operation_fee,
    value_fee, total_fee}` in the effects): the base fee, the write fee of the objects written
    (`operation_fee`) and the value fee."""

    base: int = 0
    operation: int = 0
    value: int = 0

    @property
    def total(self) -> int:
        return self.base + self.operation + self.value


def transaction_fee_parts(params: ProtocolParams, written_objects: int, value_fee: int) -> FeeParts:
    """The parts of `transaction_fee`: base fee, write fee per written object, value fee."""
    return FeeParts(params.base_fee, params.write_object_fee * written_objects, value_fee)


def transaction_fee(params: ProtocolParams, written_objects: int, value_fee: int) -> int:
    """What a successful transaction pays: base fee + write fee per written object + value fee."""
    return transaction_fee_parts(params, written_objects, value_fee).total


def failed_transaction_fee(params: ProtocolParams, gas_balance: int) -> int:
    """A failed transaction still pays the base fee, at most what its gas coin holds."""
    return min(params.base_fee, gas_balance)


def transfer_value_fee(amount: int, value_fee_bps: int) -> int:
    """TransferCoin / PayCoins: `amount·value_fee_bps/10000`, floored."""
    return bps_mul(amount, value_fee_bps)


def stake_value_fee(amount: int, value_fee_bps: int) -> int:
    """CreateModel / AddStake / AddStakeToModel: half the rate, `amount·(value_fee_bps/2)/10000`."""
    return bps_mul(amount, value_fee_bps // 2)


def withdraw_value_fee(principal: int, value_fee_bps: int) -> int:
    """WithdrawStake: half the rate on the StakedSoma's principal ([S] `staking.rs` FeeCalculator)."""
    return bps_mul(principal, value_fee_bps // 2)


def claim_value_fee(reward: int, value_fee_bps: int) -> int:
    """ClaimRewards: half the rate on the target's reward, `reward·(value_fee_bps/2)/10000`."""
    return bps_mul(reward, value_fee_bps // 2)


def adjust_value_fee(bps: int, collected: int, params: ProtocolParams) -> int:
    """Steer the value fee toward collecting `target_epoch_fee_collection` per epoch (at each epoch change).

    The move is proportional to the miss and capped at fee_adjustment_rate (12.5%) of the current
    rate, all floored, then clamped to [min_value_fee_bps, max_value_fee_bps]: from 10 bps quiet
    epochs go 10, 9, 8, 7 and then stay at 7.
    """
    target = params.target_epoch_fee_collection
    if target == 0:
        return bps
    ratio = collected * BPS // target
    cap = bps * params.fee_adjustment_rate_bps // BPS
    if ratio > BPS:
        return min(bps + min(bps * (ratio - BPS) // BPS, cap), params.max_value_fee_bps)
    return max(bps - min(bps * (BPS - ratio) // BPS, cap), params.min_value_fee_bps)
