"""The scoring service of a soma-ray localnet: what `/scoring.Scoring/Score` answers (§1.1–§1.2).

Same contract as the official service: download the data (verify size and checksum), score it
with every model in request order (exact float32 `evaluate`, the given seed), the winner is the
first minimum loss, and the answer carries only the winner's loss and distance. Unlike the
official service, decrypted models stay resident (a `ModelStore` LRU), so repeated requests over
the same models do not reload them.

The wire format and the gRPC handler live in the chain layer (`soma_ray.chain.served.tools`);
this module is the `Scorer` handed to it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from soma_ray.chain.served.tools import ScoreRejected, ScoreRequest, ScoreResponse, check_score_request
from soma_ray.chain.types import Manifest
from soma_ray.protocol.architecture import ArchitectureSettings
from soma_ray.protocol.commitments import commitment
from soma_ray.protocol.constants import ProtocolParams
from soma_ray.storage.errors import StorageError
from soma_ray.storage.fetcher import CHAIN_POLICY, fetch_url

log = logging.getLogger(__name__)


class ScoringService:
    """A blocking `Scorer`: one request at a time, models resident between requests."""

    def __init__(
        self, architecture: ArchitectureSettings, cache_dir: Path, *, max_resident: int = 3, device: str = "cpu"
    ) -> None:
        from soma_models.v1.torch import ModelConfig

        from soma_ray.scoring.store import ModelStore

        self.architecture = architecture
        self.store = ModelStore(
            cache_dir, ModelConfig(dropout_rate=0.0, **architecture.shape()), max_resident=max_resident, device=device,
            policy=CHAIN_POLICY,  # manifests in a request are untrusted: http(s) only
        )
        self._lock = threading.Lock()

    def __call__(self, request: ScoreRequest) -> ScoreResponse:
        check_score_request(request)
        if len(request.target_embedding) != self.architecture.embedding_dim:
            raise ScoreRejected(
                f"Target embedding must have {self.architecture.embedding_dim} values, got {len(request.target_embedding)}"
            )
        with self._lock:
            return self._score(request)

    def _score(self, request: ScoreRequest) -> ScoreResponse:
        from soma_ray.scoring.evaluate import evaluate
        from soma_ray.scoring.select import select
        from soma_ray.scoring.store import ModelUnavailable

        data = self._data(request)
        evaluations = []
        for index, m in enumerate(request.model_manifests):
            if m.decryption_key is None:
                raise ScoreRejected(f"model manifest {index} has no decryption key (required: weights are encrypted)")
            manifest = Manifest(url=m.url, checksum=m.checksum, size=m.size, decryption_key=m.decryption_key)
            try:
                model = self.store.get(m.checksum, manifest)
            except ModelUnavailable as err:
                raise ScoreRejected(f"Invalid model manifest {index}: {err.reason}") from None
            evaluations.append(evaluate(model, [data], request.seed)[0])
        try:
            winner, loss, embedding, distance = select(evaluations, np.asarray(request.target_embedding, np.float32))
        except ValueError:
            reason = next((e.error for e in evaluations if e.error), "no model produced a loss")
            raise ScoreRejected(f"Invalid data: {reason}") from None
        return ScoreResponse(winner, [loss], [float(x) for x in embedding], [distance])

    def _data(self, request: ScoreRequest) -> bytes:
        try:
            data = fetch_url(request.data_url, max_bytes=min(request.data_size, ProtocolParams.max_submission_data_size))
        except StorageError as err:
            raise ScoreRejected(f"Invalid data URL: {err}") from None
        if len(data) != request.data_size:
            raise ScoreRejected(f"Data size must be {request.data_size} bytes, downloaded {len(data)}")
        if commitment(data) != request.data_checksum:
            raise ScoreRejected(f"Checksum mismatch: data hashes to {commitment(data)}, request says {request.data_checksum}")
        return data
