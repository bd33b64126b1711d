"""The batched scorer equals a one-sample-at-a-time reading of §1.5 (float32, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from soma_models.v1.tokenizer import tokenize
from soma_models.v1.torch import Model, ModelConfig

from soma_ray.scoring.chunks import chunk_samples, rejection
from soma_ray.scoring.evaluate import Evaluation, evaluate
from soma_ray.scoring.forward import encode
from tests.scoring.reference import reference_eval

SIZES = [1, 1023, 1024, 1025, 16_384, 16_385, 100_000]


def tiny_model(seed: int = 0, width: int = 32) -> Model:
    torch.manual_seed(seed)
    config = ModelConfig(dropout_rate=0.0, embedding_dim=width, pwff_hidden_dim=2 * width, num_layers=2, num_heads=4)
    return Model(config).eval()


@pytest.fixture(scope="module")
def model() -> Model:
    return tiny_model()


@pytest.fixture(scope="module")
def samples() -> list[bytes]:
    rng = np.random.default_rng(7)  # random bytes: mostly invalid UTF-8
    return [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in SIZES]


@pytest.fixture(scope="module")
def packed(model: Model, samples: list[bytes]) -> list[Evaluation]:
    """All sizes in one call, so their chunks share forward batches."""
    return evaluate(model, samples, rows_per_forward=24)


@pytest.mark.parametrize("index", range(len(SIZES)), ids=[f"{n}B" for n in SIZES])
def test_matches_one_sample_reference(model: Model, samples: list[bytes], packed: list[Evaluation], index: int) -> None:
    loss, embedding = reference_eval(model, samples[index])
    got = packed[index]
    assert got.ok and got.embedding.dtype == np.float32 and got.embedding.shape == (model.config.embedding_dim,)
    assert got.loss == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(got.embedding, embedding, rtol=1e-5, atol=1e-5 * float(np.abs(embedding).max()))


def test_packing_does_not_change_results(model: Model, samples: list[bytes], packed: list[Evaluation]) -> None:
    alone = evaluate(model, [samples[3]], rows_per_forward=1)[0]
    assert alone.loss == pytest.approx(packed[3].loss, rel=1e-6)
    np.testing.assert_allclose(alone.embedding, packed[3].embedding, rtol=1e-5, atol=1e-6)


def test_seed_moves_only_the_sigreg_term(model: Model, samples: list[bytes]) -> None:
    zero, other = evaluate(model, [samples[2]], seed=0)[0], evaluate(model, [samples[2]], seed=5)[0]
    assert zero.loss != other.loss
    np.testing.assert_allclose(zero.embedding, other.embedding, rtol=1e-6)
    assert other.loss == pytest.approx(reference_eval(model, samples[2], seed=5)[0], rel=1e-5)


def test_bad_samples_are_rejected_alone(model: Model) -> None:
    results = evaluate(model, [b"", b"ok", b"x" * (1_048_576 + 1), b"\xff\xfe"])
    assert [r.ok for r in results] == [False, True, False, True]
    assert results[0].error is not None and "empty" in results[0].error
    assert results[2].error is not None and "1 MiB" in results[2].error
    assert np.isnan(results[0].loss) and np.isnan(results[2].embedding).all()
    assert results[1].loss == pytest.approx(reference_eval(model, b"ok")[0], rel=1e-5)


def test_exactly_one_mib_is_accepted_as_64_batches() -> None:
    data = b"a" * 1_048_576
    assert rejection(data) is None
    chunks = chunk_samples([(0, data)])
    assert chunks.tokens.shape == (1024, 1024) and chunks.batch.max() == 63
    assert chunks.positions[-1, -1] == 1_048_575 and (chunks.tokens != 257).all()  # full: no EOS


def test_chunks_match_soma_models_tokenizer() -> None:
    rng = np.random.default_rng(1)
    for size in (1, 1023, 1024, 1025, 2048, 16_385):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        chunks = chunk_samples([(0, data)])
        expected = tokenize(data)
        assert [list(r) for r in chunks.tokens] == [s.token_ids for s in expected]
        assert [list(r) for r in chunks.targets] == [s.targets for s in expected]
        assert [list(r) for r in chunks.positions] == [s.pos_ids for s in expected]


def test_fast_encode_equals_soma_models_encode(model: Model) -> None:
    tokens = torch.randint(0, 258, (3, 1024))
    positions = torch.arange(1024).repeat(3, 1) + 5000
    with torch.no_grad():
        torch.testing.assert_close(encode(model, tokens, positions), model.encode(tokens, positions), rtol=1e-5, atol=1e-5)


def test_bf16_prefilter_is_close_but_not_exact(model: Model, samples: list[bytes]) -> None:
    exact = evaluate(model, samples[:4])
    fast = evaluate(model, samples[:4], precision="bf16")
    for e, f in zip(exact, fast, strict=True):
        assert f.loss == pytest.approx(e.loss, rel=0.05)
    assert any(e.loss != f.loss for e, f in zip(exact, fast, strict=True))
