"""Shared fixtures: a fresh small simulated network per test, funded wallets."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from soma_sdk import Keypair

from soma_ray.chain.sim import SimChain, SimSettings
from tests.kit import FaultProxy

# Ray on these machines (design.md): loopback only, no auth token, no usage stats.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def small_sim_settings(root: Path, **overrides: object) -> SimSettings:
    """A tiny network: width-16 models, few targets, so a test runs in milliseconds."""
    raw: dict[str, object] = {
        "path": root / "sim",
        "genesis_models": 4,
        "genesis_targets": 10,
        "params": {"target_initial_targets_per_epoch": 10},
    }
    raw.update(overrides)
    return SimSettings.model_validate(raw)


@pytest.fixture
def sim(tmp_path: Path) -> SimChain:
    return SimChain(small_sim_settings(tmp_path))


FundFn = Callable[..., Awaitable[Keypair]]


@pytest.fixture
def fund(sim: SimChain) -> FundFn:
    """Make a keypair holding `coins` faucet coins (2 SOMA each)."""

    async def make(coins: int = 1) -> Keypair:
        keypair = Keypair.generate()
        for _ in range(coins):
            await sim.faucet(keypair.address())
        return keypair

    return make


@pytest.fixture
def served_sim(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A small network whose blobs (genesis weights, uploads) are served over real HTTP."""
    from soma_ray.storage import BlobHTTPServer

    blobs = tmp_path / "sim" / "blobs"
    blobs.mkdir(parents=True)
    server = BlobHTTPServer(blobs).start()
    yield SimChain(small_sim_settings(tmp_path, blob_url=server.url)), server
    server.stop()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One real S3-compatible server (moto, in-process, 127.0.0.1) for the whole session; each
    suite makes its own buckets on it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def fault_proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    """A real HTTP proxy in front of the session's moto server that injects storage faults
    (5xx, stalls, dropped connections, wrong bytes) into the requests a test picks."""
    proxy = FaultProxy(moto_endpoint)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def ray_session():  # type: ignore[no-untyped-def]
    """One local Ray cluster for the whole test session (design.md: not one per test)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start their own Ray clusters (tests/cluster/) run last, after the session's
    local Ray is shut down: one process joins one cluster, and two clusters alive at once
    confuse Ray's address discovery (design.md)."""
    items.sort(key=lambda item: "tests/cluster/" in item.nodeid.replace("\\", "/"))


@pytest.fixture(scope="module")
def no_session_ray() -> None:
    """Leave the session's local Ray before a test that starts clusters of its own."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
