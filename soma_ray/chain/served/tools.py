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

from soma_ray.protocol.wire import bcs
from soma_ray.protocol.wire.bcs import BcsError, Reader, decode_all

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
    return decode_all(data, Reader.string)


def encode_gas_request(recipient: str) -> bytes:
    return bcs.string(recipient)


def encode_gas_response(response: GasResponse) -> bytes:
    def coin(c: GasCoinInfo) -> bytes:
        return bcs.u64(c.amount) + bcs.string(c.id) + bcs.string(c.transfer_tx_digest)

    return bcs.string(response.status) + bcs.vector(response.coins_sent, coin)


def decode_gas_response(data: bytes) -> GasResponse:
    def read(reader: Reader) -> GasResponse:
        status = reader.string()
        return GasResponse(status, reader.vector(lambda r: GasCoinInfo(r.u64(), r.string(), r.string())))

    return decode_all(data, read)


# -- admin -------------------------------------------------------------------------------------


def decode_empty(data: bytes) -> None:
    """An empty request struct (AdvanceEpochRequest{}, HealthRequest{}): zero bytes."""
    Reader(data).finish()


def encode_epoch(epoch: int) -> bytes:
    """AdvanceEpochResponse{epoch: u64}."""
    return bcs.u64(epoch)


def decode_epoch(data: bytes) -> int:
    return decode_all(data, Reader.u64)


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
    def read(reader: Reader) -> ScoreRequest:
        data_url, checksum, size = reader.string(), reader.string(), reader.u64()
        manifests = reader.vector(lambda r: ManifestInput(r.string(), r.string(), r.u64(), r.option(Reader.string)))
        embedding = _f32_list(reader.vector(Reader.u32))
        return ScoreRequest(data_url, checksum, size, manifests, embedding, reader.u64())

    return decode_all(data, read)


def _u32s(values: list[float]) -> bytes:
    return bcs.vector(_bits(values), bcs.u32)


def encode_score_request(request: ScoreRequest) -> bytes:
    def manifest(m: ManifestInput) -> bytes:
        return bcs.string(m.url) + bcs.string(m.checksum) + bcs.u64(m.size) + bcs.option(m.decryption_key, bcs.string)

    return (
        bcs.string(request.data_url) + bcs.string(request.data_checksum) + bcs.u64(request.data_size)
        + bcs.vector(request.model_manifests, manifest) + _u32s(request.target_embedding) + bcs.u64(request.seed)
    )


def encode_score_response(response: ScoreResponse) -> bytes:
    return bcs.u64(response.winner) + b"".join(
        _u32s(values) for values in (response.loss_score, response.embedding, response.distance)
    )


def decode_score_response(data: bytes) -> ScoreResponse:
    def read(reader: Reader) -> ScoreResponse:
        winner = reader.u64()
        loss, embedding, distance = (_f32_list(reader.vector(Reader.u32)) for _ in range(3))
        return ScoreResponse(winner, loss, embedding, distance)

    return decode_all(data, read)


def encode_health(ok: bool) -> bytes:
    return bcs.boolean(ok)


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
