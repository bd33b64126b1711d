"""Which open targets to play (`submit.targets`), and why. Pure: no chain, no Ray.

Modes (`TargetsConfig.mode`):
- `all` — every open target (the default, and what the submitter always did).
- `models` — the targets listing any of `models` (model ids, or "ours": every model the wallet
  owns).
- `top_k` — the `k` targets of highest expected value, among those listing `models` if given.
- `opportunity` — the `k` targets of best reward per rival: the guide's ratio for one target,
  reward ÷ (us + rival models listed + their stake), in SOMA (`board.opportunity.target_ratio`),
  among those listing `models` if given.

Only the chosen targets' models enter the scoring plan (`model_union`), so fewer targets means
fewer models to download, keep resident and evaluate per sample.

Expected value of playing target t, in shannons (a heuristic; the rules it uses come from
`soma_ray.protocol`):

    EV(t) = p_hit(t) · p_first(t) · payout(t)

    p_hit(t)   = Φ(−z(thr_t)),  z(thr) = (1 − thr)/EMBEDDING_DISTANCE_STD   (protocol.difficulty,
                 §3.5): the chance that one sample's winning embedding lands within the threshold,
                 taking cosine distances between unrelated 2048-d embeddings as normal around 1
                 with that spread. It rises with the threshold: 1.05 → 0.99, 1.0 → 0.5, 0.95 → 0.01.
    p_first(t) = 1 / (1 + contention · Σ_{m ∈ models_t, m not ours} sqrt(stake_m / model_min_stake)):
                 every listed model's owner is a likely rival for the target (the owner earns
                 both halves when submitting to its own model), counted with the square root of
                 its stake as the protocol weights stake in assignment (§3.2); a model missing
                 from the active set counts as the minimum stake. More models, and richer ones,
                 mean more contention; `contention = 0` ignores rivals.
    payout(t)  = submitter share of reward_pool_t + model-owner share · (ours on t / models on t)
                 (protocol.rewards.split_filled, §6): the bond comes back in full and the gas of a
                 submission is negligible beside the reward, so neither is counted.

Ties rank by target id, so a selection is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from soma_ray.board.opportunity import target_ratio
from soma_ray.chain.types import Target
from soma_ray.protocol.constants import ProtocolParams, to_soma
from soma_ray.protocol.difficulty import threshold_z
from soma_ray.protocol.rewards import split_filled
from soma_ray.submission.config import OURS, TargetsConfig

SHOWN = 5  # targets named in the summary line; the rest only in `Selection.reasons`


@dataclass(frozen=True)
class Board:
    """What the expected value needs beyond the targets themselves (read from the chain per epoch)."""

    params: ProtocolParams
    stakes: Mapping[str, int] = field(default_factory=dict)  # active model id → stake
    ours: frozenset[str] = frozenset()  # the wallet's model ids


@dataclass(frozen=True)
class Value:
    """One target's expected value and its parts."""

    target: Target
    p_hit: float
    rivals: float
    p_first: float
    payout: int

    @property
    def ev(self) -> float:
        return self.p_hit * self.p_first * self.payout

    def why(self) -> str:
        return (f"EV {to_soma(round(self.ev)):.6f} SOMA (p_hit {self.p_hit:.3f}, rivals {self.rivals:.2f}, "
                f"p_first {self.p_first:.3f}, payout {to_soma(self.payout):.6f} SOMA)")


@dataclass(frozen=True)
class Selection:
    """The chosen targets (best first for top_k, board order otherwise), a reason per target
    and one summary line (what was chosen and why)."""

    targets: list[Target]
    reasons: dict[str, str]
    summary: str

    @property
    def models(self) -> list[str]:
        return model_union(self.targets)


def model_union(targets: Iterable[Target]) -> list[str]:
    """Every model listed by `targets`, sorted: the models the scoring plan loads."""
    return sorted({m for t in targets for m in t.model_ids})


def hit_probability(threshold: float) -> float:
    """Φ(−z(threshold)): the chance one sample's distance to the target is within `threshold`."""
    return 0.5 * math.erfc(threshold_z(threshold) / math.sqrt(2.0))


def expected_value(target: Target, board: Board, contention: float = 1.0) -> Value:
    """EV of playing `target` (the module docstring has the formula)."""
    min_stake = max(board.params.model_min_stake, 1)
    rivals = sum(math.sqrt(max(board.stakes.get(m, min_stake), 0) / min_stake)
                 for m in target.model_ids if m not in board.ours)
    split = split_filled(target.reward_pool, board.params)
    own = sum(1 for m in target.model_ids if m in board.ours)
    payout = split.submitter + (split.model_owner * own // len(target.model_ids) if target.model_ids else 0)
    return Value(target, hit_probability(target.distance_threshold), rivals,
                 1.0 / (1.0 + contention * rivals), payout)


def resolve_models(wanted: Sequence[str], ours: Iterable[str]) -> frozenset[str]:
    """`submit.targets.models` with "ours" replaced by the wallet's model ids."""
    mine = frozenset(ours)
    return frozenset(m for m in wanted if m != OURS) | (mine if OURS in wanted else frozenset())


def select_targets(targets: Sequence[Target], config: TargetsConfig, board: Board | None = None) -> Selection:
    """The targets `config` plays out of the open `targets`. `board` is needed by `top_k` and by
    "ours"; `all` ignores it."""
    offered = len(targets)
    if config.mode == "all":
        chosen = list(targets)
        reasons = {t.id: "all open targets" for t in chosen}
        return Selection(chosen, reasons, _summary(chosen, offered, "all open targets", []))
    if board is None:
        raise ValueError(f"target selection {config.mode} needs the board (stakes, our models)")
    wanted = resolve_models(config.models, board.ours)
    listing = [t for t in targets if not config.models or wanted.intersection(t.model_ids)]
    named = _named(config.models, board.ours)
    if config.mode == "models":
        reasons = {t.id: "lists " + ", ".join(_short(m) for m in t.model_ids if m in wanted) for t in listing}
        return Selection(listing, reasons, _summary(listing, offered, f"listing {named}", []))
    assert config.k is not None  # TargetsConfig checks it
    if config.mode == "opportunity":
        return _by_opportunity(listing, config.k, board, offered, named if config.models else "")
    values = sorted((expected_value(t, board, config.contention) for t in listing),
                    key=lambda v: (-v.ev, v.target.id))
    best = values[:config.k]
    how = f"top {config.k} by expected value" + (f" among {len(listing)} listing {named}" if config.models else "")
    reasons = {v.target.id: f"rank {i + 1}: {v.why()}" for i, v in enumerate(best)}
    return Selection([v.target for v in best], reasons, _summary([v.target for v in best], offered, how, best))


def _by_opportunity(listing: Sequence[Target], k: int, board: Board, offered: int, named: str) -> Selection:
    min_stake = board.params.model_min_stake
    ratios = {t.id: target_ratio(t.reward_pool, t.model_ids, board.stakes, board.ours, min_stake) for t in listing}
    best = sorted(listing, key=lambda t: (-ratios[t.id], t.id))[:k]
    how = f"top {k} by reward per rival" + (f" among {len(listing)} listing {named}" if named else "")
    reasons = {t.id: f"rank {i + 1}: {ratios[t.id]:.6f} SOMA per rival model + SOMA staked" for i, t in enumerate(best)}
    line = _summary(best, offered, how, [])
    return Selection(best, reasons, line)


def _named(models: Sequence[str], ours: frozenset[str]) -> str:
    return ", ".join(f"ours ({len(ours)} models)" if m == OURS else _short(m) for m in models)


def _short(identifier: str) -> str:
    return identifier[:10]


def _summary(chosen: list[Target], offered: int, how: str, values: list[Value]) -> str:
    line = f"playing {len(chosen)} of {offered} targets ({how}, {len(model_union(chosen))} models)"
    if values:
        shown = "; ".join(f"{_short(v.target.id)} {v.why()}" for v in values[:SHOWN])
        line += f": {shown}" + ("; …" if len(values) > SHOWN else "")
    elif chosen and len(chosen) < offered:
        line += ": " + ", ".join(_short(t.id) for t in chosen[:SHOWN]) + (", …" if len(chosen) > SHOWN else "")
    return line


__all__ = ["Board", "Selection", "Value", "expected_value", "hit_probability", "model_union",
           "resolve_models", "select_targets"]
