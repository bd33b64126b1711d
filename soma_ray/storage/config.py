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
    # A stalled or failing S3 fails an upload in bounded time (boto3 retries each request).
    connect_timeout_s: float = Field(default=10.0, gt=0, le=600, description="seconds to connect to S3")
    read_timeout_s: float = Field(
        default=60.0, gt=0, le=3600, description="seconds S3 may stay silent during a request (a stalled upload)"
    )
    max_attempts: int = Field(default=3, ge=1, le=10, description="tries per S3 request (5xx, timeouts)")

    @field_validator("endpoint_url", "public_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return value if not value else http_url(value)  # empty: not set (`${VAR:-}`)


class StorageConfig(_Section):
    """Where data and encrypted weights are uploaded (public-read: validators download them)."""

    kind: Literal["local", "s3"] = "local"
    local: LocalStorageConfig = Field(default_factory=LocalStorageConfig)
    s3: S3StorageConfig | None = None
