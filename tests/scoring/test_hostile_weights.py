"""Untrusted weights: safetensors only, exact tensors for the architecture, finite values.

Real encrypted weights (SomaClient.encrypt_weights) served by a real local HTTP server.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from soma_sdk import SomaClient

from soma_ray.chain.types import Manifest
from soma_ray.protocol.commitments import commitment
from soma_ray.scoring.evaluate import evaluate
from soma_ray.scoring.select import select
from soma_ray.scoring.store import ModelStore, ModelUnavailable, expected_tensors
from soma_ray.storage import BlobHTTPServer
from soma_ray.storage.fetcher import CHAIN_POLICY
from tests.scoring.test_store import TINY, weights

Publish = Callable[[str, bytes], Manifest]


@pytest.fixture
def publish(tmp_path: Path) -> Iterator[Publish]:
    root = tmp_path / "blobs"
    root.mkdir()
    server = BlobHTTPServer(root)
    server.start()

    def put(name: str, plain: bytes) -> Manifest:
        encrypted, key = SomaClient.encrypt_weights(plain, None)
        (root / name).write_bytes(encrypted)
        return Manifest(f"{server.url}/{name}", commitment(encrypted), len(encrypted), key)

    try:
        yield put
    finally:
        server.stop()


def tampered(edit: Callable[[dict[str, torch.Tensor]], None], seed: int = 0) -> bytes:
    tensors = st_load(weights(TINY, seed))
    edit(tensors)
    return bytes(st_save(tensors))


def refused(store: ModelStore, model_id: str, manifest: Manifest) -> str:
    with pytest.raises(ModelUnavailable) as err:
        store.get(model_id, manifest)
    text = str(err.value)
    assert "\n" not in text and model_id in text
    assert manifest.decryption_key is not None and manifest.decryption_key not in text
    assert store.resident() == []
    return text


def first_key() -> str:
    return min(expected_tensors(TINY))


def test_expected_tensors_match_real_weights() -> None:
    real = {name: (str(t.dtype), tuple(t.shape)) for name, t in st_load(weights(TINY, 0)).items()}
    expected = expected_tensors(TINY)
    assert set(real) == set(expected)
    for name, (dtype, shape) in expected.items():
        assert dtype == "F32" and real[name] == ("torch.float32", shape)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_unavailable(publish: Publish, tmp_path: Path, bad: float) -> None:
    def poison(tensors: dict[str, torch.Tensor]) -> None:
        tensors[first_key()][0, 0] = bad

    manifest = publish("nan.enc", tampered(poison))
    text = refused(ModelStore(tmp_path / "cache", TINY, policy=CHAIN_POLICY), "0xnan", manifest)
    assert "NaN or Inf" in text and "skipped" in text


def test_wrong_dtype_is_named(publish: Publish, tmp_path: Path) -> None:
    name = first_key()

    def halve(tensors: dict[str, torch.Tensor]) -> None:
        tensors[name] = tensors[name].to(torch.float16)

    text = refused(ModelStore(tmp_path / "cache", TINY), "0xf16", publish("f16.enc", tampered(halve)))
    assert f"tensor {name} is F16, expected F32" in text


def test_wrong_shape_is_named(publish: Publish, tmp_path: Path) -> None:
    name = first_key()

    def reshape(tensors: dict[str, torch.Tensor]) -> None:
        tensors[name] = tensors[name][:-1].contiguous()  # one row short (small enough to download)

    text = refused(ModelStore(tmp_path / "cache", TINY), "0xshape", publish("shape.enc", tampered(reshape)))
    assert f"tensor {name} has shape" in text and "do not match the model config" in text


def test_missing_and_extra_tensors_are_named(publish: Publish, tmp_path: Path) -> None:
    name = first_key()
    store = ModelStore(tmp_path / "cache", TINY)

    def drop(tensors: dict[str, torch.Tensor]) -> None:
        del tensors[name]

    def extra(tensors: dict[str, torch.Tensor]) -> None:
        tensors["zz.backdoor"] = torch.zeros(2)

    assert f"tensor {name} is missing" in refused(store, "0xdrop", publish("drop.enc", tampered(drop)))
    assert "unexpected tensor zz.backdoor" in refused(store, "0xextra", publish("extra.enc", tampered(extra)))


def test_pickled_weights_are_never_unpickled(publish: Publish, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({first_key(): torch.zeros(4)}, buffer)  # a torch.load-able (pickle) checkpoint
    text = refused(ModelStore(tmp_path / "cache", TINY), "0xpickle", publish("pickle.enc", buffer.getvalue()))
    assert "not a safetensors file" in text


def test_a_nan_model_never_wins(publish: Publish, tmp_path: Path) -> None:
    def poison(tensors: dict[str, torch.Tensor]) -> None:
        for tensor in tensors.values():
            tensor.fill_(float("nan"))

    good = publish("good.enc", weights(TINY, 1))
    nan = publish("nan.enc", tampered(poison))
    store = ModelStore(tmp_path / "cache", TINY)

    models, failures = store.get_many({"0xnan": nan, "0xgood": good})

    assert list(models) == ["0xgood"] and list(failures) == ["0xnan"]
    assert "NaN or Inf" in failures["0xnan"]
    sample = bytes(range(64))
    evaluations = [evaluate(models["0xgood"], [sample], 0)[0]]
    winner, loss, _, _ = select(evaluations, np.zeros(TINY.embedding_dim, np.float32) + 0.1)
    assert winner == 0 and np.isfinite(loss)
