"""The soma.rpc protobuf messages, generated at run time from our own `.proto` files.

`rpc()` compiles the `.proto` files of `proto/` (`PROTOS`) with grpcio-tools in
memory on first use (`grpc.protos`, about 0.1 s) and returns their messages by
name, so nothing generated is written to disk or committed and a fresh clone works after
`pip install -e .`. Start-up stays light: nothing here runs until the served network does.

grpcio-tools finds `.proto` files through `sys.path` by their path relative to the folder that
holds `soma_ray/`; that folder is put on `sys.path` for the duration of the compile (an editable
install may load `soma_ray` through an import hook instead of a path entry).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

PROTOS = (
    "soma_ray/chain/served/proto/system_state.proto",
    "soma_ray/chain/served/proto/transaction.proto",
    "soma_ray/chain/served/proto/services.proto",
)
_ROOT = str(Path(__file__).resolve().parents[3])
_lock = threading.Lock()
_messages: Messages | None = None


class Messages:
    """Every message of the .proto files by name (`rpc().GetEpochResponse`, `rpc().SystemState`)."""

    def __init__(self, modules: list[ModuleType]) -> None:
        self.modules = modules
        self.services = {
            name: str(service.full_name)
            for module in modules
            for name, service in module.DESCRIPTOR.services_by_name.items()
        }

    def __getattr__(self, name: str) -> Any:
        for module in self.modules:
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"no message {name!r} in {', '.join(PROTOS)}")


def rpc() -> Any:
    """The generated soma.rpc messages (compiled on first use)."""
    global _messages
    with _lock:
        if _messages is None:
            import grpc

            added = _ROOT not in sys.path
            if added:
                sys.path.append(_ROOT)
            try:
                _messages = Messages([grpc.protos(path) for path in PROTOS])
            finally:
                if added:
                    sys.path.remove(_ROOT)
        return _messages


def service_name(name: str) -> str:
    """The full gRPC service name of a service in the .proto (e.g. "soma.rpc.LedgerService")."""
    return str(rpc().services[name])
