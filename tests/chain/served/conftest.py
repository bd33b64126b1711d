"""A localnet served in-process on free ports over a fresh small simulated network, and the
unmodified soma-sdk client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from soma_sdk import SomaClient

from soma_ray.chain.served import LocalnetServer
from tests.chain.served.kit import served_settings


@pytest.fixture
async def localnet(tmp_path: Path) -> AsyncIterator[LocalnetServer]:
    async with LocalnetServer(served_settings(tmp_path)) as server:
        yield server


@pytest.fixture
async def client(localnet: LocalnetServer) -> SomaClient:
    urls = localnet.urls
    return await SomaClient(
        urls.rpc_url, faucet_url=urls.faucet_url, scoring_url=urls.scoring_url, admin_url=urls.admin_url
    )
