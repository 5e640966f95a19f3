"""Feedback layers: backward through R (eq. 2 with R), sigma' (Remark 2), untied vs conv, pooling."""

import pytest
import torch
import torch.nn.functional as F

from deepnets.layers import (
    FeedbackConv2d,
    FeedbackLinear,
    FeedbackUntied2d,
    ZeroPadMaxPool2d,
)

DT = torch.float64


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)  # inputs drawn below do not depend on test order


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _grad_in(layer, x, g):
    """Input gradient and weight gradient of ``layer`` for upstream gradient g."""
    x = x.clone().requires_grad_()
    out = layer(x)
    out.backward(g)
    return x.grad, layer.weight.grad, out


@pytest.mark.parametrize("k", [3, 2])
def test_conv_feedback_goes_through_R(k: int) -> None:
    layer = FeedbackConv2d(3, 4, k, method="frfb", sat_scale=None, generator=_gen()).to(DT)
    x = torch.rand(2, 3, 6, 6, dtype=DT)
    g = torch.randn(2, 4, 6, 6, dtype=DT)
    gin, gw, out = _grad_in(layer, x, g)
    # reference: plain autograd of the same conv with R's kernel in place of W's
    pad = ((k - 1) // 2, k - 1 - (k - 1) // 2) * 2
    xr = x.clone().requires_grad_()
    ref = F.conv2d(F.pad(xr, pad), layer.feedback)
    ref.backward(g)
    assert torch.allclose(gin, xr.grad, atol=1e-12)
    xw = x.clone()
    wl = layer.weight.detach().clone().requires_grad_()
    ref_out = F.conv2d(F.pad(xw, pad), wl, layer.bias.detach())
    ref_out.backward(g)
    assert torch.allclose(out, ref_out, atol=1e-12)
    assert torch.allclose(gw, wl.grad, atol=1e-12)  # Hebbian delta x^T, unchanged by R


def test_dense_feedback_goes_through_R_and_sigma_prime() -> None:
    s = 0.5
    layer = FeedbackLinear(5, 3, method="urfb", sat_scale=s, generator=_gen()).to(DT)
    with torch.no_grad():
        layer.weight.mul_(3)  # make some units saturate
    x = torch.rand(40, 5, dtype=DT) * 2 - 1
    g = torch.randn(40, 3, dtype=DT)
    gin, gw, out = _grad_in(layer, x, g)
    h = x @ layer.weight.detach().t() + layer.bias.detach()
    assert torch.equal(out, (s * h).clamp(-1, 1))
    sat = (s * h).abs() >= 1
    assert sat.any() and (~sat).any()
    delta = g * s * (~sat)  # sigma'(h) = s 1[|s h| < 1]
    assert torch.allclose(
        gin, delta @ layer.feedback.t(), atol=1e-12
    )  # R delta, R of shape (in, out)
    assert torch.allclose(gw, delta.t() @ x, atol=1e-12)


@pytest.mark.parametrize("k", [3, 2])
def test_untied_from_conv_reproduces_conv(k: int) -> None:
    conv = FeedbackConv2d(2, 3, k, method="bp", generator=_gen(1)).to(DT)
    untied = FeedbackUntied2d((2, 5, 5), 3, k, method="bp", generator=_gen(2)).to(DT)
    with torch.no_grad():
        conv.bias.uniform_(-0.5, 0.5)
    untied.copy_from_conv(conv)
    x = torch.rand(3, 2, 5, 5, dtype=DT)
    g = torch.randn(3, 3, 5, 5, dtype=DT)
    gin_c, gw_c, out_c = _grad_in(conv, x, g)
    gin_u, gw_u, out_u = _grad_in(untied, x, g)
    assert torch.allclose(out_u, out_c, atol=1e-12)
    assert torch.allclose(gin_u, gin_c, atol=1e-12)
    # bp: the per-location gradients sum to the conv's weight gradient (Section 4.1)
    assert torch.allclose(gw_u.sum(0).reshape(gw_c.shape), gw_c, atol=1e-12)
    assert torch.allclose(untied.bias.grad.sum((1, 2)), conv.bias.grad, atol=1e-12)


def test_untied_feedback_goes_through_R() -> None:
    layer = FeedbackUntied2d((2, 4, 4), 3, 3, method="frfb", sat_scale=None, generator=_gen()).to(
        DT
    )
    x = torch.rand(2, 2, 4, 4, dtype=DT)
    g = torch.randn(2, 3, 4, 4, dtype=DT)
    gin, _, _ = _grad_in(layer, x, g)
    xr = x.clone().requires_grad_()
    ref = layer.linear_op(xr, layer.feedback, torch.zeros_like(layer.bias))
    ref.backward(g)
    assert torch.allclose(gin, xr.grad, atol=1e-12)


def test_untied_padding_entries_are_not_connections() -> None:
    layer = FeedbackUntied2d((1, 4, 4), 2, 3, method="urfb", generator=_gen())
    corner = layer.weight[0, 0].reshape(3, 3)  # location (0, 0): row 0 and column 0 are padding
    assert torch.all(corner[0] == 0) and torch.all(corner[:, 0] == 0)
    assert torch.all(corner[1:, 1:] != 0)


def test_maxpool_pads_with_zeros() -> None:
    pool = ZeroPadMaxPool2d(3, 2)
    x = -torch.ones(1, 1, 32, 32)
    out = pool(x)
    assert out.shape[-2:] == (16, 16)
    assert out[0, 0, 0, 0] == 0  # window centred at (0, 0) reaches the zero padding
    assert out[0, 0, 1, 1] == -1  # window centred at (2, 2) lies inside
    assert ZeroPadMaxPool2d(3, 3)(x).shape[-1] == 11
    assert ZeroPadMaxPool2d(2, 2)(torch.zeros(1, 1, 11, 11)).shape[-1] == 6
    y = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert ZeroPadMaxPool2d(3, 2)(y)[0, 0].tolist() == [[5.0, 7.0], [13.0, 15.0]]


def test_glorot_bounds_and_independent_draws() -> None:
    layer = FeedbackConv2d(3, 32, 5, method="frfb", generator=_gen())
    bound = (6.0 / (3 * 25 + 32 * 25)) ** 0.5
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.95 * bound
    assert layer.feedback.abs().max() <= bound
    assert (
        abs(torch.corrcoef(torch.stack([layer.weight.flatten(), layer.feedback.flatten()]))[0, 1])
        < 0.1
    )
    assert layer.bias.abs().max() == 0


def test_bad_method() -> None:
    with pytest.raises(ValueError, match="method"):
        FeedbackLinear(2, 2, method="dfa")
