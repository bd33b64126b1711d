"""The one place a boto3 S3 client is built, and the helpers that read S3 failures.

Every S3 reader and writer (the blob store, `s3://` URLs, The Stack v2 blobs) gets its client
from `s3_client`: the same timeouts, retry mode and addressing rule, signed or anonymous.
Credentials are handed to boto3 only; a failure to build the client is a one-line
StorageError with them scrubbed out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from soma_ray.storage.errors import StorageError

# boto3 loads inside the functions that need it: it takes ~0.2 s to import, and most commands
# (and every recipe load) never touch S3.

__all__ = [
    "ACCESS_KEY_ENV",
    "ENDPOINT_ENV",
    "REGION_ENV",
    "SECRET_KEY_ENV",
    "client_error",
    "error_code",
    "find_cause",
    "first_env",
    "s3_client",
    "scrub",
]

# Where each setting is looked up in the environment, first match wins.
ENDPOINT_ENV = ("S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
ACCESS_KEY_ENV = ("S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID")
SECRET_KEY_ENV = ("S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")
REGION_ENV = ("S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")

Signing = Literal["signed", "anonymous", "if-credentials"]


def first_env(environ: Mapping[str, str], *names: str) -> str | None:
    """The first of `names` set to a non-blank value in `environ`, stripped; else None."""
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def s3_client(
    *,
    endpoint_url: str | None = None,
    region: str = "us-east-1",
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    signing: Signing = "signed",
    max_attempts: int = 3,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    max_pool_connections: int | None = None,
    label: str | None = None,
) -> Any:
    """A boto3 S3 client.

    - `signing`: "signed" (the given keys, else boto3's own chain: AWS_PROFILE, config files),
      "anonymous" (public buckets), or "if-credentials" (signed when boto3 finds any
      credentials, else anonymous).
    - Custom endpoints (R2, MinIO, moto) get path-style addressing; AWS picks by itself.
    - `max_attempts` counts the first try: boto3 itself retries 5xx, throttling, dropped
      connections and timeouts (standard mode, jittered backoff) before an error reaches us.
    - `connect_timeout` / `read_timeout` (seconds) bound connecting and every socket read or
      write, so a stalled server fails the request instead of hanging the caller.
    - `label` names what the client is for in the error raised when it cannot be built.
    """
    import boto3  # type: ignore[import-untyped]
    from botocore import UNSIGNED  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    try:  # e.g. a bad AWS_PROFILE fails here, before any request
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        signed = signing == "signed"
        if signing == "if-credentials":
            try:
                signed = session.get_credentials() is not None
            except Exception:  # noqa: BLE001 - a broken profile: fall back to anonymous reads
                signed = False
        options: dict[str, Any] = {}
        if max_pool_connections is not None:
            options["max_pool_connections"] = max_pool_connections
        config = Config(
            signature_version="s3v4" if signed else UNSIGNED,
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            # total_max_attempts counts the first try (botocore's max_attempts would not).
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            **options,
        )
        return session.client("s3", endpoint_url=endpoint_url, config=config)
    except Exception as err:  # noqa: BLE001 - boto3 raises many kinds; all become one line
        target = f" for {label}" if label else ""
        raise StorageError(
            f"cannot set up an S3 client{target}: {scrub(str(err), access_key_id, secret_access_key)}; "
            "check S3_REGION and AWS_PROFILE / the AWS config files"
        ) from None


def scrub(text: str, *secrets: str | None) -> str:
    """`text` with every given secret replaced by '***' (for server messages passed on)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def find_cause(err: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """`err` or the exception behind it of one of `kinds` (boto3 wraps upload failures)."""
    seen: BaseException | None = err
    for _ in range(5):  # chains are short; the bound guards against cycles
        if seen is None or isinstance(seen, kinds):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def client_error(err: BaseException) -> Any:
    """The botocore ClientError behind `err`, if any (None otherwise)."""
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]

    found = find_cause(err, (ClientError,))
    return found if isinstance(found, ClientError) else None


def error_code(err: BaseException) -> str:
    """The S3 error code ('NoSuchKey', '404', 'AccessDenied', ...) behind `err`; '' if none."""
    cause = client_error(err)
    if cause is None:
        return ""
    return str(cause.response.get("Error", {}).get("Code", ""))
