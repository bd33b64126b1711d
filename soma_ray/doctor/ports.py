"""The ports `soma-ray localnet` serves on (chain.localnet): free to serve, or a localnet on them."""

from __future__ import annotations

import socket

from soma_ray.chain.served.config import LocalnetSettings
from soma_ray.doctor.result import Check, fail, info, ok

SERVICES = ("rpc_port", "faucet_port", "scoring_port", "admin_port", "blob_port")


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def port_checks(settings: LocalnetSettings, *, serving: bool) -> list[Check]:
    """`serving`: the user means to run `soma-ray localnet`, so every port must be free. Otherwise
    the ports are only reported (taken ones usually mean a localnet is already up)."""
    ports = {name: getattr(settings, name) for name in SERVICES if getattr(settings, name)}
    taken = [f"{name.removesuffix('_port')} {port}" for name, port in ports.items() if not port_free(settings.host, port)]
    listing = ", ".join(f"{n.removesuffix('_port')} {p}" for n, p in ports.items())
    if not taken:
        return [ok("ports", f"localnet's ports are free on {settings.host} ({listing})")]
    line = f"in use on {settings.host}: {', '.join(taken)}"
    if serving:
        return [fail("ports", f"{line}; stop what holds them (`ss -ltnp`) or set other chain.localnet.*_port values")]
    return [info("ports", f"{line} (a localnet running, or another program; `soma-ray localnet` needs them free)")]
