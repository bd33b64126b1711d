"""The `storage:` section of a recipe: where data and encrypted weights are uploaded."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from soma_ray.paths import http_url


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocalStorageConfig(_Section):
    root: Path = Path(".soma-ray/sim/blobs")
    base_url: str = "http://127.0.0.1:9200"

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)


class S3StorageConfig(_Section):
    bucket: str
    endpoint_url: str | None = None
    public_url: str | None = None
    region: str | None = None
    prefix: str = ""
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None

    @field_validator("endpoint_url", "public_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return value if not value else http_url(value)  # empty: not set (`${VAR:-}`)


class StorageConfig(_Section):
    """Where data and encrypted weights are uploaded (public-read: validators download them)."""

    kind: Literal["local", "s3"] = "local"
    local: LocalStorageConfig = Field(default_factory=LocalStorageConfig)
    s3: S3StorageConfig | None = None
