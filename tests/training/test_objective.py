"""The training objective is the scorer's loss (§1.5), not soma-models' quickstart shortcut."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from soma_models.v1.torch import Model, ModelConfig, SIGReg, SIGRegConfig, compute_loss

from soma_ray.scoring.chunks import chunk_samples
from soma_ray.scoring.evaluate import evaluate
from soma_ray.scoring.sigreg import NoiseBank
from soma_ray.training.objective import ScoringObjective

SHAPE = {"embedding_dim": 32, "pwff_hidden_dim": 64, "num_layers": 2, "num_heads": 4}


def _model() -> Model:
    torch.manual_seed(3)
    return Model(ModelConfig(dropout_rate=0.0, **SHAPE)).eval()


@pytest.mark.parametrize("size", [1, 700, 1024, 3000, 16384])
def test_objective_equals_the_scorer_loss_of_one_sample(size: int) -> None:
    """With the scorer's noise, one sample's chunks as the micro-batch give the scorer's loss."""
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    model = _model()
    chunks = chunk_samples([(0, data)])
    batch = [torch.from_numpy(a) for a in (chunks.tokens, chunks.positions, chunks.targets)]
    projection = NoiseBank(SHAPE["embedding_dim"], torch.device("cpu"), seed=0).get(0)
    with torch.no_grad():
        loss, ce, sig = ScoringObjective(model)(*batch, projection)
    expected = evaluate(model, [data], seed=0)[0].loss
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(loss) == pytest.approx(float(ce) + 0.02 * float(sig), rel=1e-6)


def test_objective_differs_from_the_quickstart_loss() -> None:
    """soma-models' compute_loss uses per-row positions and CE over non-PAD targets only (§1.9)."""
    data = b"x" * 3000
    model = _model()
    chunks = chunk_samples([(0, data)])
    tokens, positions, targets = (torch.from_numpy(a) for a in (chunks.tokens, chunks.positions, chunks.targets))
    projection = NoiseBank(SHAPE["embedding_dim"], torch.device("cpu"), seed=0).get(0)
    with torch.no_grad():
        ours, _, _ = ScoringObjective(model)(tokens, positions, targets, projection)
        quick, _ = compute_loss(model, SIGReg(SIGRegConfig()), tokens, targets)
    scored = int((targets != 256).sum())
    assert scored < targets.numel()  # every chunk ends with a PAD target
    # The scorer divides by all positions; the quickstart by scored targets only.
    assert float(quick) > float(ours) * 1.01


def test_gradients_flow_through_every_parameter() -> None:
    model = _model()
    objective = ScoringObjective(model)
    chunks = chunk_samples([(0, b"hello world " * 200)])
    batch = [torch.from_numpy(a) for a in (chunks.tokens, chunks.positions, chunks.targets)]
    projection = torch.nn.functional.normalize(torch.randn(32, 256), dim=0)
    loss, _, _ = objective(*batch, projection)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_activation_checkpointing_gives_the_same_loss_and_gradients() -> None:
    """Recomputing each layer in the backward pass changes memory, not the numbers."""
    chunks = chunk_samples([(0, b"checkpoint me " * 300)])
    batch = [torch.from_numpy(a) for a in (chunks.tokens, chunks.positions, chunks.targets)]
    projection = torch.nn.functional.normalize(torch.randn(32, 256, generator=torch.Generator().manual_seed(1)), dim=0)
    results = []
    for checkpointing in (False, True):
        model = _model().train()
        loss, _, _ = ScoringObjective(model, checkpoint_layers=checkpointing)(*batch, projection)
        loss.backward()
        results.append((float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (plain_loss, plain_grads), (ckpt_loss, ckpt_grads) = results
    assert ckpt_loss == pytest.approx(plain_loss, rel=1e-6)
    assert plain_grads.keys() == ckpt_grads.keys() and len(plain_grads) > 10
    for name, grad in plain_grads.items():
        torch.testing.assert_close(ckpt_grads[name], grad, rtol=1e-5, atol=1e-6, msg=name)
