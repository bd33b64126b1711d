"""`soma-ray localnet`: serve the embedded network as a localnet until interrupted.

The server is the chain layer's (`soma_ray.chain.served`); this entry-layer module adds what the
chain layer may not import: the exact scorer (`soma_ray.scoring.service`), loaded lazily on the
first Score request so that the services are up in a second and torch loads only if someone
scores.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from soma_ray.chain.served.config import LocalnetSettings
from soma_ray.chain.served.tools import Scorer, ScoreRequest, ScoreResponse
from soma_ray.driver.config import JobConfig
from soma_ray.protocol.architecture import ArchitectureSettings

if TYPE_CHECKING:
    from soma_ray.chain.served.server import LocalnetURLs, ScorerFactory

log = logging.getLogger("soma_ray.localnet")


class LazyScorer:
    """The exact scorer for the network's architecture, built on first use."""

    def __init__(self, architecture: ArchitectureSettings, cache_dir: Path, max_resident: int) -> None:
        self.architecture = architecture
        self.cache_dir = cache_dir
        self.max_resident = max_resident
        self._scorer: Scorer | None = None
        self._lock = threading.Lock()

    def __call__(self, request: ScoreRequest) -> ScoreResponse:
        with self._lock:
            if self._scorer is None:
                from soma_ray.scoring.service import ScoringService

                log.info("scoring: loading the scorer (%s models)", self.architecture.preset)
                self._scorer = ScoringService(self.architecture, self.cache_dir, max_resident=self.max_resident)
        return self._scorer(request)


def scorer_factory(settings: LocalnetSettings) -> ScorerFactory:
    def make(architecture: ArchitectureSettings) -> Scorer:
        return LazyScorer(architecture, settings.scoring_cache, settings.scoring_max_resident)

    return make


async def serve(settings: LocalnetSettings, *, ready: asyncio.Event | None = None) -> None:
    """Serve until cancelled."""
    from soma_ray.chain.served.server import LocalnetServer

    server = LocalnetServer(settings, scorer_factory=scorer_factory(settings))
    await server.start()
    try:
        if ready is not None:
            ready.set()
        await server.serve_forever()
    finally:
        await asyncio.shield(server.stop())


def run_localnet(config: JobConfig) -> None:
    """The `localnet` job: serve `config.chain.localnet` (Ctrl-C stops it)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("soma_ray.localnet").setLevel(logging.INFO)
    try:
        asyncio.run(serve(config.chain.localnet))
    except KeyboardInterrupt:
        log.info("localnet stopped")



@contextmanager
def serving_in_background(settings: LocalnetSettings, timeout: float = 120.0) -> Iterator[LocalnetURLs]:
    """Serve `settings` from a thread of this process (an event loop of its own) while the block
    runs; yields the bound URLs. The cycle uses it to play a whole game through the wire."""
    from soma_ray.chain.served.server import LocalnetServer

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="localnet", daemon=True)
    thread.start()
    server = LocalnetServer(settings, scorer_factory=scorer_factory(settings))
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout)
        yield server.urls
    finally:
        try:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            loop.close()
