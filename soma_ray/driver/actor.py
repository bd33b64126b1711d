"""The driver as a Ray actor: named after the wallet, detached, found again with `get_if_exists`.

Restarted by Ray if its process dies (`max_restarts=-1`), with in-flight calls retried
(`max_task_retries=-1`): every method is idempotent, and the restarted driver reconciles its
ledger with the chain before it answers. Secrets reach it in the job config it is created from
(or its own environment) and never leave it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import ray

from soma_ray.chain.factory import open_chain
from soma_ray.chain.types import TxResult
from soma_ray.chain.wallet import load_keypair
from soma_ray.driver.config import JobConfig
from soma_ray.driver.driver import Driver
from soma_ray.driver.metrics import DriverMetrics
from soma_ray.driver.results import CommitResult, DriverStatus, Ledger, StakeResult, TickResult
from soma_ray.protocol.commitments import canonical_address
from soma_ray.storage.factory import open_blob_store

log = logging.getLogger("soma_ray.driver")
NAMESPACE = "soma-ray"
SIM_POLL_SECONDS = 0.2
# Every Ray head node carries this resource. The driver lives there: the head is the on-demand
# node that outlives spot workers, and its disk holds the ledger (driver.state_path).
HEAD_NODE = {"node:__internal_head__": 0.001}
# Called with the driver when it starts and at every new epoch it observes (e.g. the review's
# board snapshot); given by the layer above, so the driver needs to know nothing of it.
EpochHook = Callable[[Driver], Awaitable[None]]


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class DriverActor:
    def __init__(self, config: JobConfig, on_epoch: EpochHook | None = None) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        self.config = config
        self._on_epoch = on_epoch
        self._driver: Driver | None = None
        self._metrics: DriverMetrics | None = None
        self._starting = asyncio.Lock()
        self._chain_lock = asyncio.Lock()  # models, claims: one at a time
        self._submits = asyncio.Semaphore(config.driver.concurrent_submissions)
        self._watcher: asyncio.Task[None] | None = None
        # Start at once, not on the first call: a driver Ray restarted after a crash must
        # reconcile and keep its deadlines (a reveal) even if nobody calls it.
        self._boot = asyncio.get_running_loop().create_task(self._boot_driver())

    async def _boot_driver(self) -> None:
        try:
            await self._get()
        except Exception as err:  # noqa: BLE001 - reported again to the first caller
            log.error("driver start failed: %s", err)

    async def _get(self) -> Driver:
        async with self._starting:
            if self._driver is None:
                c = self.config
                chain = await open_chain(c.chain)
                driver = Driver(chain, load_keypair(c.wallet), open_blob_store(c.storage), c.driver, c.chain.network)
                async with self._chain_lock:
                    await driver.start()
                self._driver = driver
                self._metrics = DriverMetrics(driver.address, c.chain.network)
                self._publish()
                self._watcher = asyncio.get_running_loop().create_task(self._watch())
            return self._driver

    async def _watch(self) -> None:
        """Act when the epoch changes: poll cheaply on the simulated network, back off elsewhere."""
        assert self._driver is not None
        driver = self._driver
        base = SIM_POLL_SECONDS if self.config.chain.network == "sim" else self.config.driver.poll_seconds
        delay, last = base, (await driver.chain.info()).epoch
        await self._epoch_hook(driver)
        while True:
            await asyncio.sleep(delay)
            try:
                epoch = (await driver.chain.info()).epoch
                if epoch != last:
                    log.info("epoch %d began", epoch)
                    async with self._chain_lock:
                        await driver.tick()
                    self._publish()
                    last = epoch
                    await self._epoch_hook(driver)
                delay = base
            except Exception as err:  # noqa: BLE001 - a flaky RPC must not stop the clock
                delay = min(delay * 2, base * 16)
                log.warning("epoch watch: %s; retrying in %.0f s", err, delay)

    async def _epoch_hook(self, driver: Driver) -> None:
        if self._on_epoch is None:
            return
        try:
            await self._on_epoch(driver)
        except Exception as err:  # noqa: BLE001 - a snapshot that fails must not stop the clock
            log.warning("epoch hook: %s", err)

    def _publish(self, balance: int | None = None) -> None:
        """The ledger's totals to the dashboard, after anything that may have changed them."""
        if self._driver is not None and self._metrics is not None:
            self._metrics.publish(self._driver.ledger(), balance)

    @asynccontextmanager
    async def _acting(self, lock: asyncio.Lock | asyncio.Semaphore) -> AsyncIterator[Driver]:
        """The driver, under `lock`, with the metrics published after the action, failed or not."""
        driver = await self._get()
        async with lock:
            try:
                yield driver
            finally:
                self._publish()

    def set_epoch_hook(self, on_epoch: EpochHook) -> None:
        """Adopt a hook given by a later caller: the actor may have been started by a job that has
        none (training). A restart after a crash starts again with the constructor's hook, until
        the next caller sets it again."""
        self._on_epoch = on_epoch

    async def ready(self) -> str:
        return (await self._get()).address

    async def submit(
        self, target_id: str, data: bytes, model_id: str, embedding: list[float], distance: float, loss: float
    ) -> TxResult | None:
        async with self._acting(self._submits) as driver:
            return await driver.submit(target_id, data, model_id, embedding, distance, loss)

    async def commit(self, manifest_path: str) -> CommitResult:
        async with self._acting(self._chain_lock) as driver:
            return await driver.commit(manifest_path)

    async def reveal(self) -> list[str]:
        async with self._acting(self._chain_lock) as driver:
            return await driver.reveal()

    async def claim(self, target_ids: list[str] | None = None) -> list[str]:
        async with self._acting(self._chain_lock) as driver:
            return await driver.claim(target_ids)

    async def add_stake(self, model_id: str, amount: int, request_id: str) -> StakeResult:
        async with self._acting(self._chain_lock) as driver:
            return await driver.add_stake(model_id, amount, request_id)

    async def withdraw_stake(self, model_id: str | None, staked_ids: list[str] | None = None) -> list[StakeResult]:
        async with self._acting(self._chain_lock) as driver:
            return await driver.withdraw_stake(model_id, staked_ids)

    async def set_commission(self, rate: int, model_id: str | None = None) -> StakeResult:
        async with self._acting(self._chain_lock) as driver:
            return await driver.set_commission(rate, model_id)

    async def tick(self) -> TickResult:
        async with self._acting(self._chain_lock) as driver:
            return await driver.tick()

    async def status(self) -> DriverStatus:
        status = await (await self._get()).status()
        self._publish(status.balance)
        return status

    async def ledger(self) -> Ledger:
        return (await self._get()).ledger()


def portable(config: JobConfig) -> JobConfig:
    """Local paths made absolute: the actor may start in another working directory."""
    return config.with_absolute_paths(Path.cwd())


def actor_name(config: JobConfig) -> str:
    return f"driver-{canonical_address(load_keypair(config.wallet).address())}"


def driver_handle(config: JobConfig, on_epoch: EpochHook | None = None) -> Any:
    """The wallet's driver actor: the running one, or a new one created from `config`. With
    `on_epoch`, the actor calls it at each new epoch from now on, whoever started it."""
    config = portable(config)
    handle = DriverActor.options(  # type: ignore[attr-defined]
        name=actor_name(config), namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        resources=HEAD_NODE,
    ).remote(config, on_epoch)
    if on_epoch is not None:
        ray.get(handle.set_epoch_hook.remote(on_epoch))
    ray.get(handle.ready.remote())
    return handle


def stop_driver(config: JobConfig) -> bool:
    """Kill the wallet's driver actor if it runs (its ledger stays on disk)."""
    try:
        handle = ray.get_actor(actor_name(portable(config)), namespace=NAMESPACE)
    except ValueError:
        return False
    ray.kill(handle, no_restart=True)
    return True
