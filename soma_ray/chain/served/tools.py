"""The BCS-bodied services of a localnet: faucet, admin and scoring (protocol.md §1.1, §13.1).

These are gRPC services whose request and response bodies are plain BCS, not protobuf
(`utils/src/codec.rs`): `/faucet.Faucet/RequestGas`, `/admin.Admin/AdvanceEpoch`,
`/scoring.Scoring/Score` and `/scoring.Scoring/Health`. Each is a generic gRPC handler with its
own (de)serializers. Floats travel as their u32 bit patterns (= little-endian f32).

Scoring itself is not the chain's business: the server is handed a `Scorer` (soma-ray's exact
scorer, `soma_ray.scoring.service`, plugged in by `soma_ray.localnet`), keeping this package
free of the scoring layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from soma_ray.chain.served.bcs import BcsError, Reader, Writer

FAUCET_SERVICE = "faucet.Faucet"
ADMIN_SERVICE = "admin.Admin"
SCORING_SERVICE = "scoring.Scoring"

# -- faucet ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GasCoinInfo:
    amount: int
    id: str
    transfer_tx_digest: str


@dataclass(frozen=True)
class GasResponse:
    status: str
    coins_sent: list[GasCoinInfo] = field(default_factory=list)


def decode_gas_request(data: bytes) -> str:
    """GasRequest{recipient: String} → the recipient."""
    reader = Reader(data)
    recipient = reader.string()
    reader.finish()
    return recipient


def encode_gas_request(recipient: str) -> bytes:
    return bytes(Writer().string(recipient))


def encode_gas_response(response: GasResponse) -> bytes:
    def coin(w: Writer, c: GasCoinInfo) -> None:
        w.u64(c.amount).string(c.id).string(c.transfer_tx_digest)

    return bytes(Writer().string(response.status).seq(response.coins_sent, coin))


def decode_gas_response(data: bytes) -> GasResponse:
    reader = Reader(data)
    status = reader.string()
    coins = reader.seq(lambda r: GasCoinInfo(r.u64(), r.string(), r.string()))
    reader.finish()
    return GasResponse(status, coins)


# -- admin -------------------------------------------------------------------------------------


def decode_empty(data: bytes) -> None:
    """An empty request struct (AdvanceEpochRequest{}, HealthRequest{}): zero bytes."""
    Reader(data).finish()


def encode_epoch(epoch: int) -> bytes:
    """AdvanceEpochResponse{epoch: u64}."""
    return bytes(Writer().u64(epoch))


def decode_epoch(data: bytes) -> int:
    reader = Reader(data)
    epoch = reader.u64()
    reader.finish()
    return epoch


# -- scoring -----------------------------------------------------------------------------------


def _f32_list(bits: list[int]) -> list[float]:
    return [float(x) for x in np.asarray(bits, dtype="<u4").view("<f4")]


def _bits(values: list[float]) -> list[int]:
    return [int(x) for x in np.asarray(values, dtype="<f4").view("<u4")]


@dataclass(frozen=True)
class ManifestInput:
    url: str
    checksum: str  # base58 of the Blake2b-256 of the (encrypted) weights
    size: int
    decryption_key: str | None = None  # base58 of the 32-byte AES key


@dataclass(frozen=True)
class ScoreRequest:
    data_url: str
    data_checksum: str
    data_size: int
    model_manifests: list[ManifestInput]
    target_embedding: list[float]
    seed: int = 0


@dataclass(frozen=True)
class ScoreResponse:
    """Only the winner's loss and distance, each a one-element list (§1.2)."""

    winner: int
    loss_score: list[float]
    embedding: list[float]
    distance: list[float]


def decode_score_request(data: bytes) -> ScoreRequest:
    reader = Reader(data)
    data_url, checksum, size = reader.string(), reader.string(), reader.u64()
    manifests = reader.seq(lambda r: ManifestInput(r.string(), r.string(), r.u64(), r.option(Reader.string)))
    embedding = _f32_list(reader.seq(Reader.u32))
    seed = reader.u64()
    reader.finish()
    return ScoreRequest(data_url, checksum, size, manifests, embedding, seed)


def encode_score_request(request: ScoreRequest) -> bytes:
    def manifest(w: Writer, m: ManifestInput) -> None:
        w.string(m.url).string(m.checksum).u64(m.size).option(m.decryption_key, Writer.string)

    w = Writer().string(request.data_url).string(request.data_checksum).u64(request.data_size)
    w.seq(request.model_manifests, manifest).seq(_bits(request.target_embedding), Writer.u32).u64(request.seed)
    return bytes(w)


def encode_score_response(response: ScoreResponse) -> bytes:
    w = Writer().u64(response.winner)
    for values in (response.loss_score, response.embedding, response.distance):
        w.seq(_bits(values), Writer.u32)
    return bytes(w)


def decode_score_response(data: bytes) -> ScoreResponse:
    reader = Reader(data)
    winner = reader.u64()
    loss, embedding, distance = (_f32_list(reader.seq(Reader.u32)) for _ in range(3))
    reader.finish()
    return ScoreResponse(winner, loss, embedding, distance)


def encode_health(ok: bool) -> bytes:
    return bytes(Writer().boolean(ok))


class ScoreRejected(ValueError):
    """A request the scorer refuses (bad manifest, checksum, size): answered as InvalidArgument."""


class Scorer(Protocol):
    """Scores one request the way the official scoring service does (§1.2); blocking."""

    def __call__(self, request: ScoreRequest) -> ScoreResponse: ...


def check_score_request(request: ScoreRequest) -> None:
    """The service's own argument checks, before any download (scoring/src/scoring.rs)."""
    if not request.model_manifests:
        raise ScoreRejected("At least one model manifest is required")
    if not request.target_embedding:
        raise ScoreRejected("Target embedding is required")


__all__ = [
    "ADMIN_SERVICE", "FAUCET_SERVICE", "SCORING_SERVICE", "BcsError", "GasCoinInfo", "GasResponse",
    "ManifestInput", "ScoreRejected", "ScoreRequest", "ScoreResponse", "Scorer",
]
