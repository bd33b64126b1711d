"""S3-compatible blob store (AWS S3, Cloudflare R2, MinIO, moto): public-read uploads.

Credentials come from arguments or the environment and are handed to boto3 only; every
error leaving this module is a one-line StorageError built from error codes, never from
the credentials themselves.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit, urlunsplit

# boto3 ships no type hints; the lead may add boto3-stubs and drop these ignores.
from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from soma_ray.storage.base import check_key
from soma_ray.storage.errors import BlobNotFoundError, StorageError, redact_url
from soma_ray.storage.s3_client import (
    ACCESS_KEY_ENV,
    ENDPOINT_ENV,
    REGION_ENV,
    SECRET_KEY_ENV,
    client_error,
    error_code,
    find_cause,
    first_env,
    s3_client,
    scrub,
)

__all__ = ["S3BlobStore"]

MIB = 1024 * 1024


def _split_endpoint(endpoint_url: str, bucket: str) -> str:
    """The endpoint without a trailing '/<bucket>' (R2 dashboards show it that way)."""
    parts = urlsplit(endpoint_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StorageError(
            f"S3 endpoint {redact_url(endpoint_url)!r} is not an http(s) URL; "
            "set S3_ENDPOINT_URL like https://<account>.r2.cloudflarestorage.com"
        )
    path = parts.path.rstrip("/")
    if path == f"/{bucket}":
        path = ""
    elif path:
        raise StorageError(
            f"S3 endpoint {redact_url(endpoint_url)!r} has a path {path!r}; "
            "give the endpoint without it (the bucket goes in S3_BUCKET)"
        )
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


class S3BlobStore:
    """Blobs in one bucket (under `prefix`), uploaded public-read; `put` returns the URL.

    The URL is `public_url/key` when given (R2's r2.dev or custom domain, a CDN); else the
    path-style URL on a custom endpoint, or the AWS virtual-hosted URL for the region.
    R2 does not serve its S3 endpoint anonymously: give S3_PUBLIC_URL there.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        public_url: str | None = None,
        prefix: str = "",
        acl: str | None = "public-read",
        multipart_threshold: int = 16 * MIB,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        bucket = bucket.strip()
        if not bucket or "/" in bucket:
            raise StorageError(
                f"invalid S3 bucket name {bucket!r}; "
                "set S3_BUCKET to the bare bucket name"
            )
        if (access_key_id is None) != (secret_access_key is None):
            raise StorageError(
                "S3 credentials are incomplete; "
                "set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY"
            )
        self.bucket = bucket
        self.endpoint_url = _split_endpoint(endpoint_url, bucket) if endpoint_url else None
        self.region = region or "us-east-1"
        self.public_url = public_url.rstrip("/") if public_url else None
        self.prefix = "/".join(part for part in prefix.split("/") if part)
        if self.prefix:
            check_key(self.prefix)
        self.acl = acl or None
        self.read_timeout, self.max_attempts = read_timeout, max_attempts
        # Parts of 16 MiB keep memory bounded and let boto3 upload them in parallel.
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=max(multipart_threshold, 5 * MIB),
            max_concurrency=8,
        )
        # Kept only to scrub server messages we pass on; never shown.
        self._secrets = tuple(s for s in (access_key_id, secret_access_key) if s)
        self._client: Any = s3_client(
            endpoint_url=self.endpoint_url,
            region=self.region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            max_attempts=max_attempts,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            label=f"bucket {bucket!r}",
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> S3BlobStore:
        """Read S3_BUCKET, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY (AWS_* fallbacks for the
        keys), and the optional S3_ENDPOINT_URL, S3_PUBLIC_URL, S3_REGION, S3_PREFIX, S3_ACL."""
        bucket = first_env(environ, "S3_BUCKET")
        key_id = first_env(environ, *ACCESS_KEY_ENV)
        secret = first_env(environ, *SECRET_KEY_ENV)
        missing = [
            name
            for name, value in (
                ("S3_BUCKET", bucket),
                ("S3_ACCESS_KEY_ID", key_id),
                ("S3_SECRET_ACCESS_KEY", secret),
            )
            if value is None
        ]
        if missing:
            raise StorageError(f"S3 storage is not configured: set {', '.join(missing)} in the environment or .env")
        acl = environ.get("S3_ACL", "public-read").strip()
        return cls(
            bucket or "",
            endpoint_url=first_env(environ, *ENDPOINT_ENV),
            region=first_env(environ, *REGION_ENV),
            access_key_id=key_id,
            secret_access_key=secret,
            public_url=first_env(environ, "S3_PUBLIC_URL"),
            prefix=environ.get("S3_PREFIX", ""),
            acl=None if acl.lower() in ("", "none") else acl,
        )

    def __repr__(self) -> str:
        return (
            f"S3BlobStore(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r}, "
            f"region={self.region!r}, public_url={self.public_url!r}, prefix={self.prefix!r})"
        )

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def url_for(self, key: str) -> str:
        path = quote(self._key(key), safe="/")
        if self.public_url:
            return f"{self.public_url}/{path}"
        if self.endpoint_url:
            return f"{self.endpoint_url}/{self.bucket}/{path}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{path}"

    def put(self, key: str, data: bytes) -> str:
        extra = {"ContentType": "application/octet-stream"}
        if self.acl:
            extra["ACL"] = self.acl
        try:
            # upload_fileobj switches to a parallel multipart upload above the threshold.
            self._client.upload_fileobj(
                io.BytesIO(data),
                self.bucket,
                self._key(key),
                ExtraArgs=extra,
                Config=self._transfer,
            )
        except Exception as err:  # noqa: BLE001 - every failure becomes one line in _translate
            self._raise(err, "upload", key)
        return self.url_for(key)

    def get(self, key: str) -> bytes:
        # get_object (unlike download_fileobj's HEAD) tells NoSuchKey from NoSuchBucket.
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            body: bytes = response["Body"].read()
        except Exception as err:  # noqa: BLE001 - every failure becomes one line in _translate
            self._raise(err, "download", key)
        return body

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as err:  # noqa: BLE001 - every failure becomes one line in _translate
            if error_code(err) not in ("404", "NoSuchKey", "NotFound"):
                self._raise(err, "check", key)
            # A HEAD 404 has no body, so it cannot say whether the bucket itself is missing.
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except Exception as bucket_err:  # noqa: BLE001 - as above
                if error_code(bucket_err) in ("404", "NoSuchBucket", "NotFound"):
                    raise self._translate(bucket_err, "check", key, code="NoSuchBucket") from None
                self._raise(bucket_err, "check", key)
            return False
        return True

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as err:  # noqa: BLE001 - every failure becomes one line in _translate
            self._raise(err, "delete", key)

    def _raise(self, err: Exception, action: str, key: str) -> NoReturn:
        raise self._translate(err, action, key) from None

    def _translate(
        self, err: Exception, action: str, key: str, code: str | None = None
    ) -> StorageError:
        """One line for each failure a user can fix; server text only as a last resort."""
        if isinstance(err, StorageError):
            return err
        where = f"bucket {self.bucket!r} at {self.endpoint_url or f'AWS S3 ({self.region})'}"
        code = code or error_code(err)
        cause = client_error(err)
        if find_cause(err, (NoCredentialsError, PartialCredentialsError)):
            return StorageError(
                "no S3 credentials found; "
                "set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY"
            )
        if find_cause(err, (EndpointConnectionError, ConnectTimeoutError)):
            return StorageError(f"cannot reach {where}; check S3_ENDPOINT_URL and the network")
        tries = f"{self.max_attempts} {'try' if self.max_attempts == 1 else 'tries'}"
        if find_cause(err, (ReadTimeoutError,)):
            return StorageError(
                f"{where} did not answer within {self.read_timeout:g} s during {action} of {key!r} ({tries}); "
                "retry later, or raise storage.s3.read_timeout_s on a slow link"
            )
        if find_cause(err, (HTTPClientError,)):  # the connection dropped mid-request
            return StorageError(
                f"the connection to {where} broke during {action} of {key!r} ({tries}); "
                "retry later, or check the network and S3_ENDPOINT_URL"
            )
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) if cause is not None else 0
        if isinstance(status, int) and status >= 500:  # boto3 already retried these
            return StorageError(
                f"{where} answered HTTP {status} ({code}) to the {action} of {key!r} ({tries}); "
                "the S3 service is failing: retry later, or raise storage.s3.max_attempts"
            )
        if code in ("404", "NoSuchKey", "NotFound"):
            return BlobNotFoundError(
                f"no blob {key!r} in {where}; "
                "check the key or upload it first"
            )
        if code == "NoSuchBucket":
            return StorageError(
                f"{where} does not exist; "
                "create the bucket or fix S3_BUCKET / S3_ENDPOINT_URL"
            )
        if code == "InvalidAccessKeyId":
            return StorageError(
                f"{where} does not know this access key (InvalidAccessKeyId); "
                "check S3_ACCESS_KEY_ID"
            )
        if code == "SignatureDoesNotMatch":
            return StorageError(
                f"{where} rejected the request signature (SignatureDoesNotMatch); "
                "check S3_SECRET_ACCESS_KEY (and S3_REGION)"
            )
        if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
            return StorageError(
                f"access denied to {where} during {action} of {key!r}; "
                "give this key read/write (and PutObjectAcl for public-read, or set S3_ACL=none)"
            )
        if code in ("AccessControlListNotSupported", "NotImplemented") and action == "upload":
            return StorageError(
                f"{where} refuses the {self.acl!r} ACL ({code}); "
                "set S3_ACL=none and make the bucket public through its settings"
            )
        if cause is not None:
            message = str(cause.response.get("Error", {}).get("Message", "")) or code
            detail = f"{code}: {message}"
        else:
            detail = f"{type(err).__name__}: {err}"
        return StorageError(f"S3 {action} of {key!r} in {where} failed: {self._scrub(detail)}")

    def _scrub(self, text: str) -> str:
        # URLs lose their query strings (upload ids, presigned signatures) as well as the keys.
        text = _URL.sub(lambda match: redact_url(match.group()), text)
        return scrub(text, *self._secrets)


_URL = re.compile(r"https?://[^\s\"'<>]+")
