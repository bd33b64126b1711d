"""The embedded simulated network behind SOMA's real wire protocol (`soma-ray localnet`).

The official soma-sdk client, our `SdkChain` and the quickstart scripts run against it unchanged
(protocol.md §13): `server.LocalnetServer` serves a `SimChain`'s SQLite file as a fullnode RPC
(gRPC + protobuf, messages generated at run time from `proto/`), a faucet, an admin and a
scoring service (gRPC + BCS) and an HTTP server of the network's blobs. Signed transactions are
checked and executed on the same network (`execution`, `chain.sim.execute`).

Importing this package loads only its settings (`config.LocalnetSettings`); grpc and the
generated messages load when a server starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from soma_ray.chain.served.config import LocalnetSettings

if TYPE_CHECKING:
    from soma_ray.chain.served.server import LocalnetServer, LocalnetURLs

__all__ = ["LocalnetServer", "LocalnetSettings", "LocalnetURLs"]


def __getattr__(name: str) -> Any:
    if name in ("LocalnetServer", "LocalnetURLs"):
        from soma_ray.chain.served import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
