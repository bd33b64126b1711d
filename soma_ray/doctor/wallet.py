"""The signing key: where it comes from, its format and its file's mode (never its value)."""

from __future__ import annotations

from dataclasses import dataclass

from soma_ray.chain.config import WalletConfig
from soma_ray.chain.wallet import WalletError, key_format, keypair_from_secret, read_key_file
from soma_ray.doctor.result import Check, info, ok, problem
from soma_ray.protocol.commitments import canonical_address

FORMAT_NAMES = {"hex": "64-hex-digit secret key", "bech32": "bech32 secret key (somaprivkey1…)",
                "mnemonic": "mnemonic"}


@dataclass(frozen=True)
class WalletReport:
    check: Check
    address: str | None  # public: safe to show and to look up the balance


def wallet_check(config: WalletConfig, *, needed: bool) -> WalletReport:
    secret = config.secret_key.get_secret_value().strip() if config.secret_key is not None else ""
    from_env = bool(secret)
    if from_env:
        origin = "wallet.secret_key (SOMA_SECRET_KEY)"
    else:
        path = config.key_file
        origin = str(path)
        if not path.is_file():
            line = f"no wallet: {path} does not exist; run `soma-ray wallet new` or set SOMA_SECRET_KEY"
            return WalletReport(problem("wallet", line, needed=True) if needed else info("wallet", line), None)
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            return WalletReport(problem(
                "wallet", f"{path} has mode {mode:04o}, readable by others; run `chmod 600 {path}`", needed=needed,
            ), None)
        try:
            secret = read_key_file(path).strip()
        except WalletError as err:
            return WalletReport(problem("wallet", str(err), needed=needed), None)
    kind = key_format(secret)
    if kind == "unknown":
        return WalletReport(problem(
            "wallet", f"{origin} is not a SOMA key: expected 64 hex digits, somaprivkey1… or a 12-24 word mnemonic; "
            "create one with `soma-ray wallet new`", needed=needed,
        ), None)
    try:
        address = canonical_address(keypair_from_secret(secret, origin).address())
    except WalletError as err:
        return WalletReport(problem("wallet", str(err), needed=needed), None)
    where = origin if from_env else f"{origin} (mode 0600)"
    return WalletReport(ok("wallet", f"{FORMAT_NAMES[kind]} from {where}: address {address}"), address)
