"""`soma-ray localnet`: the served network with its exact scorer, and the command itself.

No Ray. The scoring test loads the tiny genesis models with torch; the command test runs the real
CLI in a subprocess on free ports and talks to it with the unmodified soma-sdk client.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from soma_sdk import Keypair, SomaClient

from soma_ray.chain.served import LocalnetServer
from soma_ray.localnet import scorer_factory
from soma_ray.protocol.commitments import commitment
from tests.chain.served.kit import served_settings

REPO = Path(__file__).resolve().parents[1]


async def test_score_through_the_sdk_matches_the_exact_scorer(tmp_path: Path) -> None:
    from soma_models.v1.torch import ModelConfig

    from soma_ray.chain.types import Manifest
    from soma_ray.scoring.evaluate import evaluate
    from soma_ray.scoring.select import cosine_distance
    from soma_ray.scoring.store import ModelStore

    settings = served_settings(tmp_path)
    async with LocalnetServer(settings, scorer_factory=scorer_factory(settings)) as server:
        urls = server.urls
        client = await SomaClient(urls.rpc_url, scoring_url=urls.scoring_url)
        assert await client.scoring_health() is True
        target = (await client.get_targets(limit=1))[0]
        models = await client.get_model_manifests(target)
        data = b"def soma():\n    return 'served'\n" * 40
        (server.sim.settings.blob_dir / "sample.bin").write_bytes(data)
        data_url = f"{urls.blob_url}/sample.bin"

        result = await client.score(data_url, models, target.embedding, data=data)

        arch = server.sim.settings.architecture
        store = ModelStore(tmp_path / "check-cache", ModelConfig(dropout_rate=0.0, **arch.shape()))
        evaluations = [
            evaluate(store.get(m.checksum, Manifest(m.url, m.checksum, m.size, m.decryption_key)), [data], 0)[0]
            for m in models
        ]
        losses = [e.loss for e in evaluations]
        winner = losses.index(min(losses))
        assert result.winner == winner
        assert result.loss_score == [losses[winner]]  # f32 exactly, winner only (§1.2)
        assert np.array_equal(np.asarray(result.embedding, np.float32), evaluations[winner].embedding)
        expected_distance = cosine_distance(evaluations[winner].embedding, np.asarray(target.embedding, np.float32))
        assert math.isclose(result.distance[0], expected_distance, rel_tol=0, abs_tol=0)

        again = await client.score(data_url, models, target.embedding, data_checksum=commitment(data), data_size=len(data))
        assert again.loss_score == result.loss_score  # models stayed resident

        with pytest.raises(RuntimeError, match="invalid argument.*At least one model manifest is required"):
            await client.score(data_url, [], target.embedding, data=data)
        with pytest.raises(RuntimeError, match="invalid argument.*Checksum mismatch"):
            await client.score(data_url, models, target.embedding, data_checksum=commitment(b"x"), data_size=len(data))
        with pytest.raises(RuntimeError, match="invalid argument.*Data size must be"):
            await client.score(data_url, models, target.embedding, data=data + b"x")


def test_the_command_serves_until_interrupted(tmp_path: Path) -> None:
    """`soma-ray localnet` with every port free (0): read the bound URLs from its log line, use them
    with the SDK, stop it with Ctrl-C."""
    overrides = [f"chain.localnet.{name}=0" for name in ("rpc_port", "faucet_port", "scoring_port", "admin_port",
                                                          "blob_port")]
    args = [sys.executable, "-c", "from soma_ray.cli import main; main()", "--set", "chain.localnet.sim.genesis_models=2"]
    for override in overrides:
        args += ["--set", override]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([*args, "localnet"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        urls: dict[str, str] = {}
        deadline = time.monotonic() + 120
        assert proc.stderr is not None
        while time.monotonic() < deadline and not urls:
            line = proc.stderr.readline()
            if not line:
                break
            if "localnet serving" in line:
                urls = dict(re.findall(r"(rpc|faucet|scoring|admin|blobs) (http://\S+?)[,\s]", line + " "))
        assert set(urls) == {"rpc", "faucet", "scoring", "admin", "blobs"}, "no start-up line"
        assert all(u.startswith("http://127.0.0.1:") for u in urls.values())

        async def use() -> tuple[int, float]:
            client = await SomaClient(
                urls["rpc"], faucet_url=urls["faucet"], scoring_url=urls["scoring"], admin_url=urls["admin"]
            )
            keypair = Keypair.generate()
            await client.request_faucet(keypair.address())
            return await client.advance_epoch(), await client.get_balance(keypair.address())

        epoch, balance = asyncio.run(use())
        assert (epoch, balance) == (1, 2.0)
        assert (tmp_path / ".soma-ray" / "localnet" / "sim.db").is_file()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, rest = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, rest[-2000:]
    assert "faucet: 2.000000000 SOMA" in rest and "advance_epoch: epoch 1" in rest and "localnet stopped" in rest
