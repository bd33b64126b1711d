"""Target selection (`submit.targets`): which open targets are played, and so which models load.

A crafted board whose expected values are worked out by hand below (not with the module's own
formula), then the same selection as the submit job calls it, on the simulated network (no Ray).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr
from soma_sdk import Keypair

from soma_ray.chain.config import ChainConfig, WalletConfig
from soma_ray.chain.sim import SimChain
from soma_ray.chain.types import Target, TargetStatus
from soma_ray.config.loader import ConfigError, build
from soma_ray.data.config import DataConfig
from soma_ray.protocol.commitments import canonical_address
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.protocol.difficulty import threshold_z
from soma_ray.storage.config import LocalStorageConfig, StorageConfig
from soma_ray.storage.factory import open_blob_store
from soma_ray.submission.config import SubmitConfig, SubmitSection, TargetsConfig
from soma_ray.submission.job import SubmissionRun
from soma_ray.submission.submitter import DirectSubmitter
from soma_ray.submission.targets import (
    Board,
    expected_value,
    hit_probability,
    model_union,
    resolve_models,
    select_targets,
)
from tests.conftest import small_sim_settings

PARAMS = ProtocolParams()
SOMA = PARAMS.model_min_stake  # the minimum stake: a rival weight of 1
A, B, C, D, E, MINE = (canonical_address(x) for x in ("a", "b", "c", "d", "e", "f0"))
REWARD = 1_000_000


def target(name: str, models: list[str], *, threshold: float = 1.05, reward: int = REWARD) -> Target:
    return Target(id=canonical_address(name), status=TargetStatus.OPEN, embedding=np.zeros(4, np.float32),
                  model_ids=models, distance_threshold=threshold, reward_pool=reward, generation_epoch=1)


# By hand, with p_hit(1.05) = Φ(2.27) ≈ 0.988, p_hit(0.95) ≈ 0.012, submitter and owner shares
# ≈ 0.4975 each, a minimum-stake rival weighing 1 and a 16-SOMA one 4 (square root):
T1 = target("1", [A, B, C])  # 3 rivals: 0.988 · 1/4 · 0.4975 R ≈ 0.123 R
T2 = target("2", [A])  # 1 rival: 0.988 · 1/2 · 0.4975 R ≈ 0.246 R
T3 = target("3", [MINE, B])  # 1 rival, and half the owner share is ours: 0.988 · 1/2 · 0.746 R ≈ 0.369 R
T4 = target("4", [D])  # one rival staking 16 SOMA weighs 4: 0.988 · 1/5 · 0.4975 R ≈ 0.098 R
T5 = target("5", [A, B], threshold=0.95)  # hard: 0.012 · 1/3 · 0.4975 R ≈ 0.002 R
T6 = target("6", [E], reward=3 * REWARD)  # three times the reward: 0.988 · 1/2 · 0.4975 · 3 R ≈ 0.738 R
BOARD_TARGETS = [T1, T2, T3, T4, T5, T6]
BOARD = Board(params=PARAMS, stakes={A: SOMA, B: SOMA, C: SOMA, D: 16 * SOMA, E: SOMA, MINE: 9 * SOMA},
              ours=frozenset({MINE}))


def ids(targets: list[Target]) -> list[str]:
    return [t.id for t in targets]


def test_all_plays_every_target_in_board_order() -> None:
    selection = select_targets(BOARD_TARGETS, TargetsConfig())
    assert ids(selection.targets) == ids(BOARD_TARGETS)
    assert selection.models == sorted({A, B, C, D, E, MINE})
    assert selection.summary == "playing 6 of 6 targets (all open targets, 6 models)"


def test_models_plays_the_targets_listing_them() -> None:
    assert ids(select_targets(BOARD_TARGETS, TargetsConfig(mode="models", models=[A]), BOARD).targets) == ids(
        [T1, T2, T5])
    ours = select_targets(BOARD_TARGETS, TargetsConfig(mode="models", models=["ours"]), BOARD)
    assert ids(ours.targets) == ids([T3])
    assert ours.reasons[T3.id] == f"lists {MINE[:10]}"
    mixed = select_targets(BOARD_TARGETS, TargetsConfig(mode="models", models=["ours", D]), BOARD)
    assert ids(mixed.targets) == ids([T3, T4])


def test_top_k_ranks_by_expected_value() -> None:
    top3 = select_targets(BOARD_TARGETS, TargetsConfig(mode="top_k", k=3), BOARD)
    assert ids(top3.targets) == ids([T6, T3, T2])
    assert top3.summary.startswith("playing 3 of 6 targets (top 3 by expected value, 4 models): ")
    assert top3.reasons[T6.id].startswith("rank 1: EV ")
    everything = select_targets(BOARD_TARGETS, TargetsConfig(mode="top_k", k=10), BOARD)
    assert ids(everything.targets) == ids([T6, T3, T2, T1, T4, T5])
    # a filter first, then the ranking: of T1, T2, T5 (listing A), the two best
    among_a = select_targets(BOARD_TARGETS, TargetsConfig(mode="top_k", k=2, models=[A]), BOARD)
    assert ids(among_a.targets) == ids([T2, T1])
    assert "top 2 by expected value among 3 listing" in among_a.summary


def test_opportunity_ranks_by_reward_per_rival() -> None:
    # By hand, reward ÷ (us + rival models + their stake), in SOMA (R = 0.001 SOMA): T6 3R/3,
    # T2 R/3 and T3 R/3 (our model is no rival; the tie goes by id), T5 R/5 (the threshold does not
    # count here), T1 R/7, T4 R/18 (16 SOMA staked).
    assert SOMA == 10**9 and REWARD == 10**6
    ranked = select_targets(BOARD_TARGETS, TargetsConfig(mode="opportunity", k=6), BOARD)
    assert ids(ranked.targets) == ids([T6, *sorted([T2, T3], key=lambda t: t.id), T5, T1, T4])
    assert ranked.reasons[T6.id] == "rank 1: 0.001000 SOMA per rival model + SOMA staked"
    assert ranked.reasons[T4.id].endswith(f"{0.001 / 18:.6f} SOMA per rival model + SOMA staked")
    top2 = select_targets(BOARD_TARGETS, TargetsConfig(mode="opportunity", k=2), BOARD)
    assert ids(top2.targets) == ids(ranked.targets[:2]) and "top 2 by reward per rival" in top2.summary
    among_a = select_targets(BOARD_TARGETS, TargetsConfig(mode="opportunity", k=3, models=[A]), BOARD)
    assert ids(among_a.targets) == [T2.id, T5.id, T1.id]
    gone = target("7", [canonical_address("9e")])  # no longer active: counted at the minimum stake
    assert select_targets([gone, T4], TargetsConfig(mode="opportunity", k=1), BOARD).targets == [gone]


def test_without_contention_rivals_do_not_count_and_ties_go_by_id() -> None:
    # T1, T2, T4 are now worth the same (same reward, threshold, no ours): the smallest id wins
    top3 = select_targets(BOARD_TARGETS, TargetsConfig(mode="top_k", k=3, contention=0.0), BOARD)
    assert ids(top3.targets) == ids([T6, T3, T1])


def test_expected_value_parts() -> None:
    value = expected_value(T4, BOARD)
    assert value.rivals == pytest.approx(4.0) and value.p_first == pytest.approx(0.2)
    assert value.payout == 497_500  # R − 49.75% (owner) − 0.5% (claimer)
    mine = expected_value(T3, BOARD)
    assert mine.rivals == pytest.approx(1.0)  # our own model is no rival
    assert mine.payout == 497_500 + 497_500 // 2  # and half the owner's 49.75%: one of its two models
    unknown = expected_value(target("7", [canonical_address("99")]), BOARD)
    assert unknown.rivals == pytest.approx(1.0)  # a model without a known stake counts as the minimum


def test_hit_probability_rises_with_the_threshold() -> None:
    assert threshold_z(1.05) == pytest.approx(-0.05 / 0.022)
    assert hit_probability(1.0) == pytest.approx(0.5)
    assert hit_probability(1.05) == pytest.approx(0.98849, abs=1e-4)
    assert hit_probability(0.95) == pytest.approx(0.01151, abs=1e-4)
    values = [hit_probability(t) for t in (0.95, 0.99, 1.0, 1.02, 1.05, 2.0)]
    assert values == sorted(values) and values[-1] == pytest.approx(1.0)


def test_ours_resolves_to_the_wallet_models() -> None:
    assert resolve_models(["ours", A], {MINE, D}) == {MINE, D, A}
    assert resolve_models([A], {MINE}) == {A}
    assert resolve_models(["ours"], set()) == frozenset()


def test_fewer_targets_fewer_models() -> None:
    assert model_union([T1, T2, T5]) == sorted({A, B, C})
    counts = [len(select_targets(BOARD_TARGETS, TargetsConfig(mode="top_k", k=k), BOARD).models)
              for k in range(1, 7)]
    assert counts == [1, 3, 4, 5, 6, 6]  # E; +MINE, B; +A; +C; +D; T5 adds nothing new


@pytest.mark.parametrize(("raw", "expected"), [
    ({"mode": "top_k"}, "mode top_k needs k"),
    ({"mode": "best"}, "Input should be 'all', 'models', 'top_k' or 'opportunity'"),
    ({"mode": "opportunity"}, "mode opportunity needs k"),
    ({"mode": "models"}, "mode models needs models"),
    ({"k": 3}, "k applies to modes top_k and opportunity only"),
    ({"models": ["ours"]}, "models applies to modes models, top_k and opportunity"),
    ({"mode": "models", "models": ["xyz"]}, "not a SOMA address: 'xyz'"),
    ({"mode": "top_k", "k": 0}, "greater than or equal to 1"),
    ({"mode": "all", "top": 3}, "unknown key"),
])
def test_config_errors_are_one_line(raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build(SubmitSection, {"targets": raw}, "submit.yaml")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("submit.yaml: targets") and expected in message


def test_model_ids_are_canonical() -> None:
    config = TargetsConfig(mode="models", models=["OURS", "0xAB", "cd"])
    assert config.models == ["ours", canonical_address("ab"), canonical_address("cd")]
    assert SubmitSection().targets == TargetsConfig(mode="all")  # the default: every target


@pytest.fixture
def run(tmp_path: Path) -> Any:
    """A submit run as the job builds it (no Ray: only its selection is called), on a network of
    eight models, so that targets differ in theirs."""
    sim = SimChain(small_sim_settings(tmp_path, genesis_models=8))
    server = SimpleNamespace(url="http://127.0.0.1:9")  # nothing is uploaded or downloaded here
    me = Keypair.generate()
    for _ in range(3):
        asyncio.run(sim.faucet(me.address()))

    def make(targets: dict[str, Any]) -> SubmissionRun:
        config = SubmitConfig(
            chain=ChainConfig(network="sim", sim=sim.settings),
            storage=StorageConfig(kind="local", local=LocalStorageConfig(root=tmp_path / "blobs", base_url=server.url)),
            wallet=WalletConfig(secret_key=SecretStr(me.to_secret_key())),
            data=DataConfig(source="text", path=tmp_path),
            submit={"targets": targets},
        )
        return SubmissionRun(config, sim, DirectSubmitter(sim, me, open_blob_store(config.storage)), loop)

    with asyncio.Runner() as loop:
        yield make, sim, me, loop


def test_the_job_plays_only_the_chosen_targets(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    make, sim, me, loop = run
    open_targets = loop.run(sim.all_targets(TargetStatus.OPEN))
    everything = make({}).choose(1, open_targets)
    assert ids(everything.targets) == ids(open_targets)
    submission = make({"mode": "top_k", "k": 1})
    with caplog.at_level("INFO", logger="soma_ray.submit"):
        one = submission.choose(1, open_targets)
    assert len(one.targets) == 1 and len(one.models) < len(everything.models)
    assert "epoch 1: playing 1 of 10 targets (top 1 by expected value, 3 models)" in caplog.text
    stakes = {m.model_id: m.stake for m in loop.run(sim.active_models())}
    assert submission.board is not None and dict(submission.board.stakes) == stakes
    assert ids(one.targets) == ids(select_targets(open_targets, TargetsConfig(mode="top_k", k=1), submission.board)
                                   .targets)

    # after a fill (here a rival's), the refresh plays only what the selection picks among the
    # open targets whose models are loaded
    filled = one.targets[0]
    rival = Keypair.generate()
    loop.run(sim.faucet(rival.address()))
    loop.run(sim.submit_data(rival, filled.id, data=b"x", data_url="http://127.0.0.1/x",
                             model_id=filled.model_ids[0], embedding=filled.embedding, distance_score=0.0,
                             loss_score=[1.0]))
    live = {filled.id: filled}
    submission._refresh(live, set(one.models))
    now_open = loop.run(sim.all_targets(TargetStatus.OPEN))
    loaded = [t for t in now_open if any(m in one.models for m in t.model_ids)]
    assert filled.id not in live and len(live) == 1
    assert list(live) == ids(select_targets(loaded, TargetsConfig(mode="top_k", k=1), submission.board).targets)


def test_the_job_resolves_ours_from_the_wallet(run: Any) -> None:
    make, sim, me, loop = run
    mine = loop.run(sim.create_model(me))  # created, not yet active: listed by no target
    submission = make({"mode": "models", "models": ["ours"]})
    selection = submission.choose(1, loop.run(sim.all_targets(TargetStatus.OPEN)))
    assert submission.board is not None and submission.board.ours == {mine}
    assert selection.targets == [] and selection.models == []
