"""The signing key: from SOMA_SECRET_KEY or a 0600 key file. Never printed or logged."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from soma_sdk import Keypair

from soma_ray.chain.config import WalletConfig
from soma_ray.errors import InputError, SomaRayError


class WalletError(SomaRayError):
    """A missing or unreadable key, as one line that never contains the key."""


class BadKeyError(WalletError, InputError):
    """A key that is there but is not a SOMA secret key (bad input: exit status 2)."""


# A secret key is 64 hex digits or a ~70-character bech32 string; anything much longer is not one.
MAX_KEY_FILE_BYTES = 4096


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


KeyFormat = Literal["hex", "bech32", "mnemonic", "unknown"]
_HEX = re.compile(r"(0x)?[0-9a-fA-F]{64}")
BECH32_PREFIX = "somaprivkey1"
MNEMONIC_WORDS = (12, 15, 18, 21, 24)


def key_format(secret: str) -> KeyFormat:
    """What a secret looks like (never what it is): 64 hex digits, a bech32 `somaprivkey1…`
    string, a BIP-39 mnemonic of 12-24 words, or none of these."""
    text = secret.strip()
    if _HEX.fullmatch(text):
        return "hex"
    if text.lower().startswith(BECH32_PREFIX) and " " not in text:
        return "bech32"
    words = text.split()
    if len(words) in MNEMONIC_WORDS and all(w.isalpha() and w.islower() for w in words):
        return "mnemonic"
    return "unknown"


def keypair_from_secret(secret: str, origin: str) -> Keypair:
    """The keypair of a hex or bech32 secret key, or of a BIP-39 mnemonic."""
    text = secret.strip()
    try:
        if key_format(text) == "mnemonic":
            return Keypair.from_mnemonic(" ".join(text.split()))
        return Keypair.from_secret_key(text)
    except Exception:  # the SDK's message may echo the input: never show it
        raise BadKeyError(
            f"{origin} does not hold a valid SOMA secret key (64 hex digits, somaprivkey1… or a 12-24 word "
            "mnemonic); create one with `soma-ray wallet new`"
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
    return keypair_from_secret(read_key_file(config.key_file), str(config.key_file))


def read_key_file(path: Path) -> str:
    """The key file's text; one line (never its content) when it cannot be read or is not text."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise WalletError(f"{path}: cannot read the key file ({exc.strerror or type(exc).__name__}); check it") from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise BadKeyError(
            f"{path} is larger than {MAX_KEY_FILE_BYTES} bytes, so it is not a SOMA secret key; "
            "point wallet.key_file at the key (create one with `soma-ray wallet new`)"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadKeyError(
            f"{path} is not text (not UTF-8), so it is not a SOMA secret key; "
            "point wallet.key_file at the key (create one with `soma-ray wallet new`)"
        ) from None
