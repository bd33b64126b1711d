"""The signing key: from SOMA_SECRET_KEY or a 0600 key file. Never printed or logged."""

from __future__ import annotations

import os
from pathlib import Path

from soma_sdk import Keypair

from soma_ray.chain.config import WalletConfig
from soma_ray.errors import SomaRayError


class WalletError(SomaRayError):
    """A missing or unreadable key, as one line that never contains the key."""


def create_key_file(path: Path, *, force: bool = False) -> Keypair:
    """Generate a keypair and write its secret to `path`, readable by the owner only."""
    if path.exists() and not force:
        raise WalletError(f"{path} already exists; pass --force to replace it (the old key is lost)")
    path.parent.mkdir(parents=True, exist_ok=True)
    keypair = Keypair.generate()
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(keypair.to_secret_key() + "\n")
    os.replace(tmp, path)
    return keypair


def keypair_from_secret(secret: str, origin: str) -> Keypair:
    try:
        return Keypair.from_secret_key(secret.strip())
    except Exception:  # the SDK's message may echo the input: never show it
        raise WalletError(
            f"{origin} does not hold a valid SOMA secret key (hex, bytes or somaprivkey1…); "
            "create one with `soma-ray wallet new`"
        ) from None


def load_keypair(config: WalletConfig) -> Keypair:
    if config.secret_key is not None and config.secret_key.get_secret_value():
        return keypair_from_secret(config.secret_key.get_secret_value(), "wallet.secret_key (SOMA_SECRET_KEY)")
    if not config.key_file.is_file():
        raise WalletError(
            f"no wallet: {config.key_file} does not exist; run `soma-ray wallet new` or set SOMA_SECRET_KEY"
        )
    if config.key_file.stat().st_mode & 0o077:
        raise WalletError(f"{config.key_file} is readable by others; run `chmod 600 {config.key_file}`")
    return keypair_from_secret(config.key_file.read_text(), str(config.key_file))
