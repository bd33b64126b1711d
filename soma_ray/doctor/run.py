"""Run every check a recipe needs, in the order a set-up is built: Python, packages, `.env`, the
recipe, torch, Ray, wallet, chain, storage, Hugging Face, disk, ports."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from soma_ray.config import ConfigError, JobConfig
from soma_ray.doctor.needs import Needs, needs_of
from soma_ray.doctor.result import Check, Level, exit_status, fail, ok

GROUPS = ("python", "packages", "env", "recipe", "torch", "ray", "wallet", "chain", "storage", "hf", "disk", "ports")
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PRIVATE|ACCESS_KEY|MNEMONIC", re.IGNORECASE)


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    kind: str | None = None
    secrets: set[str] = field(default_factory=set)

    @property
    def status(self) -> int:
        return exit_status(self.checks)

    def scrubbed(self) -> list[Check]:
        """The checks with any secret value replaced by *** (a last guard: no check prints one)."""
        hidden = sorted((s for s in self.secrets if len(s) >= 6), key=len, reverse=True)

        def clean(text: str) -> str:
            for secret in hidden:
                text = text.replace(secret, "***")
            return text

        return [Check(c.name, c.level, clean(c.message)) for c in self.checks]


def secret_values(environ: Mapping[str, str], config: JobConfig | None) -> set[str]:
    values = {v.strip() for k, v in environ.items() if _SECRET_NAME.search(k) and v.strip()}
    if config is not None:
        wallet, s3 = config.wallet, config.storage.s3
        for secret in (wallet.secret_key, s3.access_key_id if s3 else None, s3.secret_access_key if s3 else None):
            if secret is not None and secret.get_secret_value().strip():
                values.add(secret.get_secret_value().strip())
        try:
            if wallet.key_file.is_file() and wallet.key_file.stat().st_size <= 4096:
                values.add(wallet.key_file.read_text(errors="replace").strip())
        except OSError:
            pass
    return values


def diagnose(
    load: Callable[[], JobConfig],
    *,
    source: str,
    skip: Iterable[str] = (),
    serving_localnet: bool = False,
    dotenv: Path = Path(".env"),
    environ: Mapping[str, str] = os.environ,
) -> Report:
    """Every check of the recipe `load` returns (`source` names it in the recipe line)."""
    from soma_ray.config.loader import environment

    logging.getLogger("dotenv.main").setLevel(logging.ERROR)  # the .env check names unparsable lines itself
    skipped = set(skip)
    report = Report()
    merged = environment(dotenv)  # what ${VAR} in a recipe sees: the environment over .env
    report.secrets |= secret_values(merged, None)

    def want(group: str) -> bool:
        return group not in skipped

    if want("python") or want("packages"):
        from soma_ray.doctor.python_env import package_checks, python_check

        if want("python"):
            report.checks.append(python_check())
        if want("packages"):
            report.checks.extend(package_checks())
    config: JobConfig | None = None
    try:
        config = load()
    except ConfigError as err:
        recipe_check = fail("recipe", str(err))
    else:
        report.secrets |= secret_values(merged, config)
        report.kind = config.kind
        recipe_check = ok("recipe", f"{source}: kind {config.kind} on network {config.chain.network}")
    needs = needs_of(config) if config is not None else None
    if want("env"):
        from soma_ray.doctor.env_file import env_checks

        # a recipe that does not load may well fail on these: show them as failures then
        report.checks.extend(env_checks(dotenv, environ, s3_needed=needs.s3 if needs else True))
    if want("recipe"):
        report.checks.append(recipe_check)
    if config is None or needs is None:
        return report
    report.checks.extend(_recipe_checks(config, needs, want, serving_localnet, dotenv, environ))
    return report


def _recipe_checks(
    config: JobConfig, needs: Needs, want: Callable[[str], bool], serving_localnet: bool, dotenv: Path,
    environ: Mapping[str, str],
) -> list[Check]:
    checks: list[Check] = []
    if want("torch") and (needs.ray or needs.gpu):
        from soma_ray.doctor.python_env import torch_check

        checks.append(torch_check(needed=needs.gpu))
    if want("ray"):
        from soma_ray.doctor.ray_cluster import ray_checks

        checks.extend(ray_checks(needs.ray_resources, needed=needs.ray, environ=environ))
    address: str | None = None
    if want("wallet") and needs.chain:
        from soma_ray.doctor.wallet import wallet_check

        wallet = wallet_check(config.wallet, needed=needs.wallet)
        checks.append(wallet.check)
        address = wallet.address
    if want("chain") and needs.chain:
        from soma_ray.doctor.chain import chain_checks

        checks.extend(asyncio.run(chain_checks(config.chain, address, needed=True, funds_needed=needs.wallet)))
    if want("storage") and (needs.s3 or config.kind in ("submit", "train", "sweep")):
        from soma_ray.doctor.storage import storage_checks

        checks.extend(storage_checks(config.storage))
    if want("hf") and needs.hub_dataset is not None:
        from dotenv import dotenv_values

        from soma_ray.doctor.huggingface import hub_checks

        in_dotenv = frozenset(dotenv_values(dotenv)) if dotenv.is_file() else frozenset()
        checks.extend(hub_checks(needs.hub_dataset, gated=needs.hub_gated, dotenv_names=in_dotenv, environ=environ))
    if want("disk") and needs.model_cache is not None and needs.architecture is not None:
        from soma_ray.doctor.disk import disk_check

        checks.append(disk_check(needs.model_cache, needs.architecture))
    if want("ports") and (serving_localnet or config.chain.network == "localnet"):
        from soma_ray.doctor.ports import port_checks

        checks.extend(port_checks(config.chain.localnet, serving=serving_localnet))
    return checks


def summary(report: Report) -> str:
    failed = sum(c.level is Level.FAIL for c in report.checks)
    warned = sum(c.level is Level.WARN for c in report.checks)
    what = f"kind {report.kind}" if report.kind else "this set-up"
    if failed:
        return f"{failed} problem(s) to fix for {what}" + (f"; {warned} warning(s)" if warned else "")
    return f"ready for {what}" + (f" ({warned} warning(s) worth a look)" if warned else "")
