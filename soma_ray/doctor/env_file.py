"""`.env` pitfalls: lines that do not parse, a file others can read, URLs without a scheme, and a
public URL that points at the bucket's S3 API endpoint (R2 serves no anonymous reads there)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dotenv.parser import parse_stream

from soma_ray.doctor.result import Check, info, ok, problem, warn
from soma_ray.storage.errors import redact_url

# The URL-valued variables soma-ray and its libraries read; any other `*_URL` in .env is checked too.
URL_VARIABLES = (
    "S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_PUBLIC_URL",
    "SOMA_RPC_URL", "SOMA_FAUCET_URL", "SOMA_ADMIN_URL", "SOMA_SCORING_URL", "HF_ENDPOINT",
)
S3_VARIABLES = ("S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_PUBLIC_URL")
R2_API_SUFFIX = ".r2.cloudflarestorage.com"


@dataclass(frozen=True)
class Setting:
    value: str
    origin: str  # ".env line 3" or "the environment"


def read_settings(dotenv: Path, environ: Mapping[str, str]) -> tuple[dict[str, Setting], list[int]]:
    """Every variable of `.env` and of the environment (which wins, as in config loading), and
    the numbers of the `.env` lines that do not parse."""
    settings: dict[str, Setting] = {}
    broken: list[int] = []
    if dotenv.is_file():
        with dotenv.open(encoding="utf-8", errors="replace") as handle:
            for binding in parse_stream(handle):
                if binding.error:
                    broken.append(binding.original.line)
                elif binding.key is not None and binding.value is not None:
                    settings[binding.key] = Setting(binding.value, f"{dotenv.name} line {binding.original.line}")
    for name, value in environ.items():
        settings[name] = Setting(value, "the environment")
    return settings, broken


def env_checks(dotenv: Path = Path(".env"), environ: Mapping[str, str] = os.environ, *, s3_needed: bool) -> list[Check]:
    settings, broken = read_settings(dotenv, environ)
    checks: list[Check] = []
    if dotenv.is_file():
        checks.extend(warn(".env", f"{dotenv} line {n} is not KEY=value and is ignored; fix or remove it") for n in broken)
        mode = dotenv.stat().st_mode & 0o777
        if mode & 0o077:
            checks.append(warn(".env", f"{dotenv} has mode {mode:04o}: others can read its secrets; run `chmod 600 {dotenv}`"))
    names = [n for n in URL_VARIABLES if n in settings] + sorted(
        n for n, s in settings.items() if n.endswith("_URL") and n not in URL_VARIABLES and s.origin != "the environment"
    )
    for name in names:
        setting = settings[name]
        value = setting.value.strip()
        if value and not value.startswith(("http://", "https://")):
            shown = value if "@" not in value else "<redacted>"
            checks.append(problem(
                ".env", f"{name} ({setting.origin}) is {shown!r}, without a scheme; write it as https://{shown}",
                needed=s3_needed and name in S3_VARIABLES,
            ))
    checks.extend(_public_url(settings, s3_needed=s3_needed))
    if not checks:
        checks.append(ok(".env", f"{dotenv}: no pitfalls found" if dotenv.is_file()
                         else f"no {dotenv} here; settings come from the environment"))
    elif not dotenv.is_file():
        checks.insert(0, info(".env", f"no {dotenv} here; settings come from the environment"))
    return checks


def _host(url: str) -> str:
    """host[:port], lower case ('' when unparsable)."""
    try:
        parts = urlsplit(url)
        return (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return ""


def _public_url(settings: Mapping[str, Setting], *, s3_needed: bool) -> list[Check]:
    public = settings.get("S3_PUBLIC_URL")
    if public is None or not public.value.strip():
        return []
    host = _host(public.value.strip())
    endpoint = next((settings[n] for n in S3_VARIABLES[:3] if n in settings and settings[n].value.strip()), None)
    if host.partition(":")[0].endswith(R2_API_SUFFIX):
        return [problem(".env", f"S3_PUBLIC_URL ({public.origin}) is {redact_url(public.value.strip())}, the bucket's "
                        "S3 API endpoint, which serves no public reads; use the bucket's public URL "
                        "(https://pub-….r2.dev or a custom domain)", needed=s3_needed)]
    if endpoint is not None and host and host == _host(endpoint.value.strip()):
        return [problem(".env", f"S3_PUBLIC_URL ({public.origin}) points at the S3 API endpoint "
                        f"{redact_url(endpoint.value.strip())}; set it to the bucket's public URL, or leave it "
                        "empty to use path-style URLs on that endpoint", needed=False)]
    return []
