"""Target budget (protocol.md §3.3), validators' share of an epoch (§6) and slashing (§5), with the
chain's numbers written out."""

from __future__ import annotations

from soma_ray.protocol.constants import SHANNONS_PER_SOMA, ProtocolParams
from soma_ray.protocol.difficulty import target_budget_allows
from soma_ray.protocol.rewards import validator_share
from soma_ray.protocol.slashing import after_missed_deadline

P = ProtocolParams()
EMISSION = 1_370 * SHANNONS_PER_SOMA  # budget 1,096 SOMA, reward 12,685,185 → 86,400 targets
REWARD = 12_685_185
RICH = 10**18


def test_the_budget_allows_exactly_86400_default_targets() -> None:
    assert target_budget_allows(RICH, EMISSION, 0, REWARD, P)
    assert target_budget_allows(RICH, EMISSION, 86_399, REWARD, P)  # the 86,400th
    assert not target_budget_allows(RICH, EMISSION, 86_400, REWARD, P)


def test_the_pool_must_cover_one_more_reward() -> None:
    assert target_budget_allows(REWARD, EMISSION, 0, REWARD, P)
    assert not target_budget_allows(REWARD - 1, EMISSION, 0, REWARD, P)


def test_no_budget_without_emission() -> None:
    assert not target_budget_allows(RICH, 0, 0, 1, P)
    assert target_budget_allows(RICH, 0, 0, 0, P)  # zero-reward targets cost nothing


def test_validators_get_70_percent_floored() -> None:
    assert validator_share(1_000_000, P) == 700_000
    assert validator_share(7, P) == 4
    assert validator_share(EMISSION, P) == 959 * SHANNONS_PER_SOMA


def test_a_missed_deadline_halves_the_stake() -> None:
    assert after_missed_deadline(100 * SHANNONS_PER_SOMA, P) == 50 * SHANNONS_PER_SOMA
    assert after_missed_deadline(3, P) == 2  # 3·5000//10000 = 1 slashed
    assert after_missed_deadline(0, P) == 0
