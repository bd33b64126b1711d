"""Typed job configs loaded from YAML recipes (configs/*.yaml)."""

from soma_ray.config.loader import ConfigError, load_config, load_job_config
from soma_ray.config.models import (
    JOB_CONFIGS,
    ChainConfig,
    CycleConfig,
    RunConfig,
    StorageConfig,
    SubmitConfig,
    SweepConfig,
    TrainConfig,
    WalletConfig,
)

__all__ = [
    "JOB_CONFIGS",
    "ChainConfig",
    "ConfigError",
    "CycleConfig",
    "RunConfig",
    "StorageConfig",
    "SubmitConfig",
    "SweepConfig",
    "TrainConfig",
    "WalletConfig",
    "load_config",
    "load_job_config",
]
