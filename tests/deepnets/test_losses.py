"""Hinge loss (4) and its output feedback (6); softmax cross-entropy."""

import pytest
import torch
import torch.nn.functional as F

from deepnets.nn.losses import hinge_output_feedback, make_loss


def _eq6(logits: torch.Tensor, y: torch.Tensor, mu: float) -> torch.Tensor:
    """eq. (6) entry by entry, written out with loops."""
    out = torch.zeros_like(logits)
    for n in range(logits.shape[0]):
        for i in range(logits.shape[1]):
            v = float(logits[n, i])
            if i == int(y[n]):
                out[n, i] = 1.0 if v <= 1 else 0.0
            else:
                out[n, i] = -mu if v >= -1 else 0.0
    return out


def _eq4(logits: torch.Tensor, y: torch.Tensor, mu: float) -> float:
    total = 0.0
    for n in range(logits.shape[0]):
        for i in range(logits.shape[1]):
            v = float(logits[n, i])
            total += max(1 - v, 0) if i == int(y[n]) else mu * max(1 + v, 0)
    return total / logits.shape[0]


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    logits = torch.rand(7, 5, generator=g, dtype=torch.float64) * 6 - 3
    logits[0, :] = torch.tensor([1.0, -1.0, 1.0, -1.0, 0.0], dtype=torch.float64)  # boundaries
    y = torch.tensor([0, 1, 2, 3, 4, 0, 2])
    return logits, y


@pytest.mark.parametrize("mu", [None, 0.3])
def test_hinge_feedback_is_eq6(batch, mu) -> None:
    logits, y = batch
    loss_fn = make_loss("hinge", 5, mu=mu)
    mu_value = 0.25 if mu is None else mu  # default 1/(C-1)
    expected = _eq6(logits, y, mu_value)
    assert torch.equal(hinge_output_feedback(logits, y, mu_value), expected)
    leaf = logits.clone().requires_grad_()
    loss = loss_fn(leaf, y)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(_eq4(logits, y, mu_value), rel=1e-12)
    assert torch.equal(leaf.grad, -expected / logits.shape[0])  # gradient = -delta_L / N


def test_custom_output_feedback_replaces_eq6(batch) -> None:
    logits, y = batch
    seen = {}

    def fake(lg, yy, mu):
        seen["mu"] = mu
        return torch.full_like(lg, 2.0)

    leaf = logits.clone().requires_grad_()
    make_loss("hinge", 5, mu=0.1, output_feedback=fake)(leaf, y).backward()
    assert seen["mu"] == 0.1
    assert torch.allclose(leaf.grad, torch.full_like(leaf, -2.0 / logits.shape[0]))


def test_softmax_is_cross_entropy(batch) -> None:
    logits, y = batch
    assert torch.equal(make_loss("softmax", 5)(logits, y), F.cross_entropy(logits, y))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="loss must be"):
        make_loss("mse", 10)
    with pytest.raises(ValueError, match="hinge loss only"):
        make_loss("softmax", 10, mu=0.5)
