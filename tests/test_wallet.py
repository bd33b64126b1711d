"""Wallet keys: 0600 files, SOMA_SECRET_KEY, one-line errors that never contain the key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr
from soma_sdk import Keypair

from soma_ray.chain.wallet import WalletError, create_key_file, load_keypair
from soma_ray.config import WalletConfig


def test_new_key_file_is_private_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "w" / "wallet.key"
    keypair = create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keypair(WalletConfig(key_file=path)).address() == keypair.address()
    with pytest.raises(WalletError, match="already exists; pass --force"):
        create_key_file(path)
    assert create_key_file(path, force=True).address() != keypair.address()


def test_secret_key_from_env_wins_over_file(tmp_path: Path) -> None:
    keypair = Keypair.generate()
    config = WalletConfig(key_file=tmp_path / "missing.key", secret_key=SecretStr(keypair.to_secret_key()))
    assert load_keypair(config).address() == keypair.address()


def test_missing_world_readable_and_garbage_keys(tmp_path: Path) -> None:
    with pytest.raises(WalletError, match="soma-ray wallet new"):
        load_keypair(WalletConfig(key_file=tmp_path / "none.key"))
    path = tmp_path / "open.key"
    path.write_text(Keypair.generate().to_secret_key())
    path.chmod(0o644)
    with pytest.raises(WalletError, match="chmod 600"):
        load_keypair(WalletConfig(key_file=path))
    garbage = "not-a-key-but-maybe-secret-material"
    with pytest.raises(WalletError) as err:
        load_keypair(WalletConfig(secret_key=SecretStr(garbage)))
    assert garbage not in str(err.value)
    assert "\n" not in str(err.value)
