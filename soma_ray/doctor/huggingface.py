"""The Hugging Face token and access to the recipe's Hub dataset (gated sets need accepted terms)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from soma_ray.doctor.result import Check, fail, info, ok

OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def stored_token() -> str | None:
    """The token `hf auth login` saved (huggingface_hub uses it when HF_TOKEN is not set)."""
    from huggingface_hub import constants

    path = Path(constants.HF_TOKEN_PATH)
    try:
        return path.read_text().strip() or None if path.is_file() else None
    except OSError:
        return None


def hub_checks(
    dataset: str, *, gated: bool, dotenv_names: frozenset[str] = frozenset(), environ: Mapping[str, str] = os.environ
) -> list[Check]:
    """`dotenv_names`: the variables `.env` sets (soma-ray's data sources read HF_TOKEN from the
    process environment only, so a token only in `.env` is not used)."""
    token = environ.get("HF_TOKEN", "").strip() or None
    origin = "HF_TOKEN"
    if token is None and (stored := stored_token()) is not None:
        token, origin = stored, "the token `hf auth login` stored"  # huggingface_hub falls back to it
    if token is None and "HF_TOKEN" in dotenv_names:
        return [fail("hugging face", "HF_TOKEN is in .env but the data sources read it from the environment; "
                     "`export HF_TOKEN=...` (or pass it in the job's runtime_env env_vars)")]
    if token is None and gated:
        return [fail("hugging face", f"{dataset} is gated and HF_TOKEN is not set; accept its terms on the Hub, "
                     "then export HF_TOKEN (a read token from https://huggingface.co/settings/tokens)")]
    offline = [f for f in OFFLINE_FLAGS if environ.get(f, "").strip() not in ("", "0")]
    if offline:
        return [info("hugging face", f"{'/'.join(offline)} is set, so the Hub is not checked; "
                     f"the job cannot stream {dataset} while it stays set")]
    from huggingface_hub import HfApi, auth_check
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    checks: list[Check] = []
    if token is not None:
        try:
            user = HfApi().whoami(token=token).get("name", "?")
        except HfHubHTTPError as exc:
            return [fail("hugging face", f"the Hub refuses {origin} ({_first_line(exc)}); make a new read token")]
        except Exception as exc:  # noqa: BLE001 - httpx/OS errors: the Hub is out of reach
            return [fail("hugging face", f"cannot reach the Hub ({_first_line(exc)}); check the network and HF_ENDPOINT")]
        checks.append(ok("hugging face", f"{origin} belongs to {user}"))
    try:
        auth_check(dataset, repo_type="dataset", token=token or False)
    except GatedRepoError:
        checks.append(fail("hugging face", f"{dataset} is gated and this token has no access; accept its terms on "
                           f"https://huggingface.co/datasets/{dataset}"))
    except RepositoryNotFoundError:
        checks.append(fail("hugging face", f"{dataset} does not exist or is private; check data.dataset "
                           "(and HF_TOKEN for a private one)"))
    except Exception as exc:  # noqa: BLE001 - as above
        checks.append(fail("hugging face", f"cannot check {dataset} on the Hub ({_first_line(exc)}); "
                           "check the network and HF_ENDPOINT"))
    else:
        checks.append(ok("hugging face", f"{dataset} is readable{' with ' + origin if token else ''}"))
    return checks
