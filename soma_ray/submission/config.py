"""The submit job's recipe (`kind: submit`): a data source, the scoring pool, when to stop."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from soma_ray.data.config import DataConfig
from soma_ray.driver.config import JobConfig
from soma_ray.scoring.config import ScoringSection


class SubmitSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_samples: int | None = Field(default=None, ge=1, description="stop after this many samples")
    max_fills: int | None = Field(default=None, ge=1, description="stop after this many fills")
    near_miss_margin: float = Field(default=0.02, ge=0.0, description="log samples this close to a threshold")
    progress_interval_s: float = Field(default=10.0, gt=0.0)


class SubmitConfig(JobConfig):
    """The data-submission job: stream a source through the scoring pool, submit the hits."""

    kind: Literal["submit"] = "submit"
    scoring: ScoringSection = Field(default_factory=ScoringSection)
    data: DataConfig
    submit: SubmitSection = Field(default_factory=SubmitSection)


def check_inputs(config: SubmitConfig) -> None:
    """What can be checked before Ray starts (and before the heavy imports): the source names
    files (`DataError`) and the key is there and valid (`WalletError`)."""
    from soma_ray.chain.wallet import load_keypair
    from soma_ray.data.sources import check_source

    check_source(config.data)
    load_keypair(config.wallet)
