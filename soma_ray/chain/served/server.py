"""`LocalnetServer`: the embedded simulated network served behind SOMA's wire protocol.

One process serves, over one SQLite network file (the same file `SimChain`, the CLI and the jobs
use), on the ports of `soma start localnet` (protocol.md §13):

- fullnode RPC, gRPC + protobuf (`rpc_port`, 9000): LedgerService, StateService,
  SubscriptionService, TransactionExecutionService (`fullnode`, `execution`);
- faucet (`faucet_port`, 9123), scoring (`scoring_port`, 9124), admin (`admin_port`, 9125):
  gRPC with BCS bodies (`tools`);
- the network's blobs over HTTP (`blob_port`, 9126): model weights, so manifest URLs resolve.

Every service binds `settings.host` (127.0.0.1 by default). Port 0 picks a free port; the bound
URLs are in `urls` once started. Signed transactions are executed on the same network
(`execution.SignedTransactionExecutor`, unless another `executor` is given). One log line per
faucet, epoch change, score and transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import grpc

from soma_ray.chain.errors import ChainError
from soma_ray.chain.served import tools
from soma_ray.chain.served.config import LocalnetSettings
from soma_ray.chain.served.execution import SignedTransactionExecutor, TransactionExecutor, execution_handler
from soma_ray.chain.served.faults import FaultInjector
from soma_ray.chain.served.fullnode import Fullnode
from soma_ray.chain.sim.objects import load_object
from soma_ray.chain.sim.settings import SimSettings
from soma_ray.chain.sim.store import connect, load_state
from soma_ray.chain.types import TargetStatus
from soma_ray.protocol.architecture import ArchitectureSettings
from soma_ray.protocol.commitments import canonical_address
from soma_ray.protocol.constants import to_soma
from soma_ray.protocol.wire.digests import to_base58
from soma_ray.storage import BlobHTTPServer, StorageError

log = logging.getLogger("soma_ray.localnet")

# Builds the scorer for the network's model architecture (called once, at start; keep it cheap
# and load models lazily on the first Score request).
ScorerFactory = Callable[[ArchitectureSettings], tools.Scorer]
STOP_GRACE_S = 1.0


@dataclass(frozen=True)
class LocalnetURLs:
    rpc_url: str
    faucet_url: str
    scoring_url: str
    admin_url: str
    blob_url: str


class LocalnetServer:
    """Start with `await server.start()` (or `async with`), stop with `await server.stop()`."""

    def __init__(
        self,
        settings: LocalnetSettings,
        *,
        scorer_factory: ScorerFactory | None = None,
        executor: TransactionExecutor | None = None,
    ) -> None:
        self.settings = settings
        self.scorer_factory = scorer_factory
        self.executor = executor
        self.scorer: tools.Scorer | None = None
        self.sim: Any = None  # SimChain, once started
        self.sim_settings: SimSettings | None = None
        self._urls: LocalnetURLs | None = None
        self._servers: list[grpc.aio.Server] = []
        self._blobs: BlobHTTPServer | None = None
        self._score_lock = asyncio.Lock()
        # Seeded faults at ExecuteTransaction (`chain.localnet.faults`, off unless set); `arm` them
        # on a running network, read what was injected in `faults.counts`.
        self.faults = FaultInjector(settings.faults, self._advance_epoch)

    @property
    def urls(self) -> LocalnetURLs:
        if self._urls is None:
            raise ChainError("the localnet is not started")
        return self._urls

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- start and stop ------------------------------------------------------------------------

    async def start(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def _start(self) -> None:
        s = self.settings
        blob_dir = s.sim.path / "blobs"
        blob_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._blobs = BlobHTTPServer(blob_dir, s.host, s.blob_port).start()
        except StorageError as err:
            raise ChainError(f"localnet blob server: {err} (chain.localnet.blob_port)") from None
        self.sim_settings = s.sim_settings(self._blobs.server_port)
        from soma_ray.chain.sim import SimChain  # genesis may import torch: only when serving

        self.sim = await asyncio.to_thread(SimChain, self.sim_settings)
        state = await asyncio.to_thread(self._state)
        if state["blob_url"] != self.sim_settings.blob_url.rstrip("/"):
            raise ChainError(
                f"the network in {s.sim.path} publishes its blobs at {state['blob_url']} (fixed at its genesis), "
                f"not at {self.sim_settings.blob_url}: set chain.localnet.blob_port to that port, "
                "or serve a new network (chain.localnet.sim.path)"
            )
        if self.scorer_factory is not None:
            self.scorer = self.scorer_factory(ArchitectureSettings.model_validate(state["architecture"]))

        fullnode = Fullnode(self.sim_settings.db_path, chain=s.chain_name)
        rpc_port = self._serve("RPC", s.rpc_port, [*fullnode.handlers(), execution_handler(_CurrentExecutor(self))])
        faucet_port = self._serve("faucet", s.faucet_port, [self._faucet_handler()])
        scoring_port = self._serve("scoring", s.scoring_port, [self._scoring_handler()])
        admin_port = self._serve("admin", s.admin_port, [self._admin_handler()])
        for server in self._servers:
            await server.start()
        self._urls = LocalnetURLs(
            rpc_url=s.url(rpc_port),
            faucet_url=s.url(faucet_port),
            scoring_url=s.url(scoring_port),
            admin_url=s.url(admin_port),
            blob_url=self.sim_settings.blob_url,
        )
        log.info(
            "localnet serving %s (epoch %d): rpc %s, faucet %s, scoring %s, admin %s, blobs %s",
            s.sim.path, state["epoch"], *(getattr(self._urls, f) for f in LocalnetURLs.__dataclass_fields__),
        )

    def _serve(self, what: str, port: int, handlers: list[Any]) -> int:
        interceptors = [self.faults] if what == "RPC" else []
        server = grpc.aio.server(interceptors=interceptors)
        server.add_generic_rpc_handlers(handlers)
        address = f"{self.settings.host}:{port}"
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if not bound:
            port_field = {"RPC": "rpc_port"}.get(what, f"{what}_port")
            raise ChainError(f"cannot listen on {address} for the localnet {what}: is the port in use? "
                             f"(chain.localnet.{port_field})")
        self._servers.append(server)
        return int(bound)

    async def stop(self) -> None:
        servers, self._servers = self._servers, []
        await asyncio.gather(*(server.stop(STOP_GRACE_S) for server in servers))
        if self._blobs is not None:
            blobs, self._blobs = self._blobs, None
            await asyncio.to_thread(blobs.stop)
        if self.sim is not None:
            await self.sim.close()
            self.sim = None
        self._urls = None

    async def serve_forever(self) -> None:
        """Serve until cancelled (Ctrl-C in `soma-ray localnet`)."""
        await asyncio.gather(*(server.wait_for_termination() for server in self._servers))

    def _state(self) -> dict[str, Any]:
        assert self.sim_settings is not None
        conn = connect(self.sim_settings.db_path)
        try:
            return load_state(conn)
        finally:
            conn.close()

    # -- faucet, admin, scoring (BCS) ----------------------------------------------------------

    def _faucet_handler(self) -> Any:
        async def request_gas(recipient: str, context: grpc.aio.ServicerContext) -> tools.GasResponse:
            try:
                address = canonical_address(recipient)
            except ValueError as err:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid address: {err}")
                raise
            coins = await self.sim.faucet(address)
            digests = await asyncio.to_thread(self._coin_digests, [c.id for c in coins])
            sent = [tools.GasCoinInfo(c.balance, c.id, digests[c.id]) for c in coins]
            log.info("faucet: %.9f SOMA to %s", to_soma(sum(c.balance for c in coins)), address)
            return tools.GasResponse("Success", sent)

        return grpc.method_handlers_generic_handler(tools.FAUCET_SERVICE, {
            "RequestGas": grpc.unary_unary_rpc_method_handler(
                _guarded(request_gas), request_deserializer=tools.decode_gas_request,
                response_serializer=tools.encode_gas_response,
            )
        })

    def _coin_digests(self, coin_ids: list[str]) -> dict[str, str]:
        assert self.sim_settings is not None
        conn = connect(self.sim_settings.db_path)
        try:
            found = {}
            for coin_id in coin_ids:
                obj = load_object(conn, coin_id)
                found[coin_id] = to_base58(obj.previous_transaction) if obj is not None else ""
            return found
        finally:
            conn.close()

    async def _advance_epoch(self) -> int:
        return int(await self.sim.advance_epoch())

    def _admin_handler(self) -> Any:
        async def advance_epoch(request: None, context: grpc.aio.ServicerContext) -> int:
            epoch = await self._advance_epoch()
            self.faults.epoch_changed()
            opened = len(await self.sim.all_targets(TargetStatus.OPEN, epoch=epoch))
            log.info("advance_epoch: epoch %d, %d open targets", epoch, opened)
            return epoch

        return grpc.method_handlers_generic_handler(tools.ADMIN_SERVICE, {
            "AdvanceEpoch": grpc.unary_unary_rpc_method_handler(
                _guarded(advance_epoch), request_deserializer=tools.decode_empty, response_serializer=tools.encode_epoch,
            )
        })

    def _scoring_handler(self) -> Any:
        async def score(request: tools.ScoreRequest, context: grpc.aio.ServicerContext) -> tools.ScoreResponse:
            if self.scorer is None:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "this localnet serves no scorer")
            assert self.scorer is not None
            try:
                tools.check_score_request(request)
                started = time.monotonic()
                async with self._score_lock:  # one at a time: the models share one store
                    result = await asyncio.to_thread(self.scorer, request)
            except tools.ScoreRejected as err:
                log.info("score refused: %s", err)
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
                raise
            log.info(
                "score: %d model(s), %d bytes, winner %d, distance %.6f (%.1f s)",
                len(request.model_manifests), request.data_size, result.winner,
                result.distance[0] if result.distance else float("nan"), time.monotonic() - started,
            )
            return result

        async def health(request: None, context: grpc.aio.ServicerContext) -> bool:
            return self.scorer is not None

        return grpc.method_handlers_generic_handler(tools.SCORING_SERVICE, {
            "Score": grpc.unary_unary_rpc_method_handler(
                _guarded(score), request_deserializer=tools.decode_score_request,
                response_serializer=tools.encode_score_response,
            ),
            "Health": grpc.unary_unary_rpc_method_handler(
                health, request_deserializer=tools.decode_empty, response_serializer=tools.encode_health,
            ),
        })


class _CurrentExecutor:
    """The server's `executor` at the time of each request (the signed-transaction executor over
    the served sim unless one was given)."""

    def __init__(self, server: LocalnetServer) -> None:
        self.server = server
        self.default: SignedTransactionExecutor | None = None

    async def execute(self, request: Any) -> Any:
        if self.server.executor is not None:
            return await self.server.executor.execute(request)
        if self.default is None:
            self.default = SignedTransactionExecutor(self.server.sim)
        return await self.default.execute(request)


def _guarded(fn: Callable[[Any, grpc.aio.ServicerContext], Any]) -> Callable[[Any, grpc.aio.ServicerContext], Any]:
    """Failures as gRPC statuses: chain errors and bugs answer Internal with one line."""

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(request, context)
        except grpc.aio.AbortError:
            raise
        except ChainError as err:
            log.warning("%s failed: %s", getattr(fn, "__name__", "request"), err)
            await context.abort(grpc.StatusCode.INTERNAL, str(err))
        except Exception as err:
            log.exception("%s failed", getattr(fn, "__name__", "request"))
            await context.abort(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")

    return call
