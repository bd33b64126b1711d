"""The submit job's recipe (`kind: submit`): a data source, the scoring pool, when to stop."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from soma_ray.data.config import DataConfig
from soma_ray.driver.config import JobConfig
from soma_ray.protocol.commitments import canonical_address
from soma_ray.review.config import ReviewSection
from soma_ray.scoring.config import ScoringSection

OURS = "ours"  # in `submit.targets.models`: the models the wallet owns


class TargetsConfig(BaseModel):
    """Which open targets to play (`submit.targets`); only their models are loaded and scored.

    `all` plays every open target (the default); `models` plays the targets listing any of
    `models`; `top_k` plays the `k` targets of highest expected value (`soma_ray.submission.targets`
    gives the formula), `opportunity` the `k` of best reward per rival (`board.opportunity.target_ratio`),
    each among those listing `models` when that list is given.
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["all", "models", "top_k", "opportunity"] = Field(
        default="all", description="all: every open target; models: those listing `models`; "
        "top_k: the `k` of highest expected value; opportunity: the `k` of best reward ÷ (rival models + their stake)")
    models: list[str] = Field(
        default_factory=list, description='model ids (quoted in YAML) or "ours" (every model the wallet owns); '
        "required by mode models, an optional filter for top_k and opportunity")
    k: int | None = Field(default=None, ge=1, description="top_k, opportunity: how many targets to play")
    contention: float = Field(
        default=1.0, ge=0.0, description="top_k: how much each rival model (weighted by the square root "
        "of its stake) lowers the chance of being first; 0 ignores rivals")

    @field_validator("models")
    @classmethod
    def _ids(cls, models: list[str]) -> list[str]:
        """Ids as the chain shows them (`0x` + 64 lowercase hex), so they compare exactly."""
        out = []
        for m in models:
            if m.strip().lower() == OURS:
                out.append(OURS)
            elif not m.strip():
                raise ValueError('an empty model id; give model ids or "ours"')
            else:
                out.append(canonical_address(m))  # ValueError: "not a SOMA address: ..."
        return out

    @model_validator(mode="after")
    def _consistent(self) -> TargetsConfig:
        ranked = self.mode in ("top_k", "opportunity")
        if ranked and self.k is None:
            raise ValueError(f"mode {self.mode} needs k, how many targets to play (e.g. k: 10)")
        if self.mode == "models" and not self.models:
            raise ValueError('mode models needs models: a list of model ids or "ours"')
        if not ranked and self.k is not None:
            raise ValueError(f"k applies to modes top_k and opportunity only (mode is {self.mode})")
        if self.mode == "all" and self.models:
            raise ValueError("models applies to modes models, top_k and opportunity (mode all plays every target)")
        return self


class SubmitSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_samples: int | None = Field(default=None, ge=1, description="stop after this many samples")
    max_fills: int | None = Field(default=None, ge=1, description="stop after this many fills")
    near_miss_margin: float = Field(default=0.02, ge=0.0, description="log samples this close to a threshold")
    progress_interval_s: float = Field(default=10.0, gt=0.0)
    targets: TargetsConfig = Field(default_factory=TargetsConfig, description="which open targets to play")


class SubmitConfig(JobConfig):
    """The data-submission job: stream a source through the scoring pool, submit the hits."""

    kind: Literal["submit"] = "submit"
    scoring: ScoringSection = Field(default_factory=ScoringSection)
    data: DataConfig
    submit: SubmitSection = Field(default_factory=SubmitSection)
    review: ReviewSection = Field(default_factory=ReviewSection, description="the epoch review (soma-ray review)")


def check_inputs(config: SubmitConfig) -> None:
    """What can be checked before Ray starts (and before the heavy imports): the source names
    files (`DataError`) and the key is there and valid (`WalletError`)."""
    from soma_ray.chain.wallet import load_keypair
    from soma_ray.data.sources import check_source

    check_source(config.data)
    load_keypair(config.wallet)
