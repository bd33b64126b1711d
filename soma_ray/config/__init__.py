"""Typed job configs loaded from YAML recipes (configs/*.yaml): the entry layer's view of them."""

from soma_ray.chain.config import ChainConfig, WalletConfig
from soma_ray.config.jobs import JOB_CONFIGS, CycleConfig, RunConfig, driver_config
from soma_ray.config.loader import ConfigError, load_config, load_job_config
from soma_ray.driver.config import JobConfig
from soma_ray.storage.config import StorageConfig
from soma_ray.submission.config import SubmitConfig
from soma_ray.training.config import SweepConfig, TrainConfig

__all__ = [
    "JOB_CONFIGS",
    "ChainConfig",
    "ConfigError",
    "CycleConfig",
    "JobConfig",
    "RunConfig",
    "StorageConfig",
    "SubmitConfig",
    "SweepConfig",
    "TrainConfig",
    "WalletConfig",
    "driver_config",
    "load_config",
    "load_job_config",
]
