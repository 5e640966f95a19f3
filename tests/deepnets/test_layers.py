"""Feedback layers: backward through R (eq. 2 with R), sigma' (Remark 2), untied vs conv, pooling,
the layer options, the exact route (W^t) and the update order bound to the forward pass."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from deepnets.nn.layers import (
    BackwardRoute,
    FeedbackConv2d,
    FeedbackLinear,
    FeedbackRule,
    FeedbackUntied2d,
    LayerOptions,
    ZeroPadMaxPool2d,
    route_backward,
    sequential_steps,
)

DT = torch.float64


def opts(method: str, sat_scale: float | None = 0.5, **kw) -> LayerOptions:
    return LayerOptions(FeedbackRule.make(method), sat_scale=sat_scale, **kw)


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


def _same_pad(k: int) -> tuple[int, ...]:
    return ((k - 1) // 2, k - 1 - (k - 1) // 2) * 2


@pytest.mark.parametrize("k", [3, 2])
def test_conv_feedback_goes_through_R(k: int) -> None:
    layer = FeedbackConv2d(3, 4, k, opts("frfb", None), generator=_gen()).to(DT)
    x = torch.rand(2, 3, 6, 6, dtype=DT)
    g = torch.randn(2, 4, 6, 6, dtype=DT)
    gin, gw, out = _grad_in(layer, x, g)
    # reference: plain autograd of the same conv with R's kernel in place of W's
    pad = _same_pad(k)
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
    layer = FeedbackLinear(5, 3, opts("urfb", s), generator=_gen()).to(DT)
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
    assert torch.allclose(gin, delta @ layer.feedback.t(), atol=1e-12)  # R delta, R is (in, out)
    assert torch.allclose(gw, delta.t() @ x, atol=1e-12)


@pytest.mark.parametrize("k", [3, 2])
def test_bp_layer_is_plain_autograd(k: int) -> None:
    """bp: the layer's forward and backward are autograd's of conv + clip(s h, -1, 1)."""
    layer = FeedbackConv2d(3, 4, k, opts("bp"), generator=_gen()).to(DT)
    with torch.no_grad():
        layer.weight.mul_(4)  # some units saturate
    x = torch.rand(2, 3, 6, 6, dtype=DT)
    g = torch.randn(2, 4, 6, 6, dtype=DT)
    gin, gw, out = _grad_in(layer, x, g)
    xr = x.clone().requires_grad_()
    wr = layer.weight.detach().clone().requires_grad_()
    br = layer.bias.detach().clone().requires_grad_()
    ref = (0.5 * F.conv2d(F.pad(xr, _same_pad(k)), wr, br)).clamp(-1, 1)
    ref.backward(g)
    assert torch.allclose(out, ref, atol=1e-12)
    assert torch.allclose(gin, xr.grad, atol=1e-12)
    assert torch.allclose(gw, wr.grad, atol=1e-12)
    assert torch.allclose(layer.bias.grad, br.grad, atol=1e-12)


@pytest.mark.parametrize("k", [3, 2])
def test_untied_from_conv_reproduces_conv(k: int) -> None:
    conv = FeedbackConv2d(2, 3, k, opts("bp"), generator=_gen(1)).to(DT)
    untied = FeedbackUntied2d((2, 5, 5), 3, k, opts("bp"), generator=_gen(2)).to(DT)
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


@pytest.mark.parametrize("method", ["bp", "frfb", "urfb"])
def test_a_replicated_untied_layer_starts_as_the_conv_of_the_same_draw(method: str) -> None:
    """Section 4.1 as the author's code runs it: the untied layer starts from a conv's filter
    bank at every location (the same numbers from the same generator), so it computes that conv
    and its feedback is that conv's; the generator is left where the conv leaves it."""
    gc, gu = _gen(5), _gen(5)
    conv = FeedbackConv2d(2, 3, 3, opts(method, bias=False), generator=gc).to(DT)
    untied = FeedbackUntied2d((2, 6, 6), 3, 3, opts(method, bias=False), generator=gu,
                              replicated=True).to(DT)
    assert torch.equal(gc.get_state(), gu.get_state())
    x = torch.rand(2, 2, 6, 6, dtype=DT)
    g = torch.randn(2, 3, 6, 6, dtype=DT)
    gin_c, _, out_c = _grad_in(conv, x, g)
    gin_u, _, out_u = _grad_in(untied, x, g)
    assert torch.allclose(out_u, out_c, atol=1e-12) and torch.allclose(gin_u, gin_c, atol=1e-12)
    inner = untied.weight.reshape(6, 6, 3, -1)[1:-1, 1:-1]  # locations without padding taps
    assert torch.equal(inner, conv.weight.reshape(3, -1).expand_as(inner))


def test_an_independent_untied_layer_draws_every_location_apart() -> None:
    layer = FeedbackUntied2d((2, 6, 6), 3, 3, opts("urfb"), generator=_gen(5))
    inner = layer.weight.reshape(6, 6, 3, -1)[1:-1, 1:-1].reshape(16, -1)
    assert len({tuple(row.tolist()) for row in inner}) == 16
    replicated = FeedbackUntied2d((2, 6, 6), 3, 3, opts("urfb"), generator=_gen(5),
                                  replicated=True)
    assert torch.equal(layer.weight[0, 0], replicated.weight[0, 0])  # the first draws agree


def test_untied_feedback_goes_through_R() -> None:
    layer = FeedbackUntied2d((2, 4, 4), 3, 3, opts("frfb", None), generator=_gen()).to(DT)
    x = torch.rand(2, 2, 4, 4, dtype=DT)
    g = torch.randn(2, 3, 4, 4, dtype=DT)
    gin, _, _ = _grad_in(layer, x, g)
    xr = x.clone().requires_grad_()
    ref = layer.linear_op(xr, layer.feedback, torch.zeros_like(layer.bias))
    ref.backward(g)
    assert torch.allclose(gin, xr.grad, atol=1e-12)


def test_untied_padding_entries_are_not_connections() -> None:
    layer = FeedbackUntied2d((1, 4, 4), 2, 3, opts("urfb"), generator=_gen())
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
    layer = FeedbackConv2d(3, 32, 5, opts("frfb"), generator=_gen())
    bound = (6.0 / (3 * 25 + 32 * 25)) ** 0.5
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.95 * bound
    assert layer.feedback.abs().max() <= bound
    pair = torch.stack([layer.weight.detach().flatten(), layer.feedback.flatten()])
    assert abs(torch.corrcoef(pair)[0, 1]) < 0.1
    assert layer.bias.abs().max() == 0


def test_w_is_the_same_for_every_method_and_symmetric_init_copies_it() -> None:
    layers = {m: FeedbackLinear(6, 4, opts(m), generator=_gen(3)) for m in ("bp", "frfb", "urfb")}
    assert torch.equal(layers["bp"].weight, layers["frfb"].weight)
    assert torch.equal(layers["bp"].weight, layers["urfb"].weight)
    assert layers["bp"].feedback is None
    sym = FeedbackLinear(6, 4, opts("urfb", symmetric_init=True), generator=_gen(3))
    assert torch.equal(sym.feedback_as_weight(), sym.weight.detach())


def test_rule_and_options_are_checked() -> None:
    with pytest.raises(ValueError, match="method"):
        FeedbackRule.make("nope")
    with pytest.raises(ValueError, match="method 'frfb' takes no parameter epsilon"):
        FeedbackRule.make("frfb", epsilon=0.5)
    with pytest.raises(ValueError, match="takes no parameter epsilon"):
        FeedbackRule.make("bp", epsilon=1.0)
    with pytest.raises(ValueError, match="connectivity"):
        LayerOptions(connectivity=0.0)
    with pytest.raises(ValueError, match="sat_scale"):
        LayerOptions(sat_scale=-1.0)
    assert FeedbackRule.make("urfb").params == {"epsilon": 1.0}
    assert FeedbackRule.make("frfb").params == {}
    assert FeedbackRule.make("urfb", epsilon=0.25).epsilon == 0.25


def test_method_is_read_only_and_options_frozen() -> None:
    layer = FeedbackLinear(3, 2, LayerOptions(FeedbackRule.make("urfb", epsilon=0.5)), generator=_gen())
    assert layer.rule == FeedbackRule.make("urfb", epsilon=0.5) and layer.rule.epsilon == 0.5
    with pytest.raises(AttributeError):
        layer.method = "bp"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        layer.rule.epsilon = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.options.connectivity = 0.5  # type: ignore[misc]
    assert layer.method == layer.rule.name == FeedbackRule.make("urfb").name


@pytest.mark.parametrize("kind", ["dense", "conv", "untied"])
def test_exact_route_sends_the_error_through_W(kind: str) -> None:
    """One forward pass, back-propagated through R and then exactly (W^t) = plain autograd."""
    if kind == "dense":
        layer = FeedbackLinear(5, 3, opts("frfb"), generator=_gen()).to(DT)
        x = torch.rand(4, 5, dtype=DT)
    elif kind == "conv":
        layer = FeedbackConv2d(2, 3, 3, opts("frfb"), generator=_gen()).to(DT)
        x = torch.rand(2, 2, 4, 4, dtype=DT)
    else:
        layer = FeedbackUntied2d((2, 4, 4), 3, 3, opts("frfb"), generator=_gen()).to(DT)
        x = torch.rand(2, 2, 4, 4, dtype=DT)
    x.requires_grad_()
    route = BackwardRoute()
    with route_backward(route):
        out = layer(x)
    g = torch.randn_like(out)
    own = torch.autograd.grad(out, x, g, retain_graph=True)[0]
    route.exact = True
    exact = torch.autograd.grad(out, x, g)[0]
    xr = x.detach().clone().requires_grad_()
    ref = (0.5 * layer.linear_op(xr, layer.weight.detach(), layer.bias.detach())).clamp(-1, 1)
    ref.backward(g)
    assert torch.allclose(exact, xr.grad, atol=1e-12)
    assert not torch.allclose(own, exact, atol=1e-3)  # R is not W^t for frfb


def test_sequential_steps_are_bound_at_the_forward_pass() -> None:
    """Remark 1: a forward pass inside ``sequential_steps`` learns during its backward pass,
    wherever that backward runs; one outside it only returns gradients."""
    x, g = torch.rand(4, 5, dtype=DT), torch.randn(4, 3, dtype=DT)
    bound = FeedbackLinear(5, 3, opts("urfb"), generator=_gen()).to(DT)
    w0, r0 = bound.weight.detach().clone(), bound.feedback.clone()
    with sequential_steps(bound, 0.1):
        out = bound(x)
    out.backward(g)  # outside the context
    assert bound.weight.grad is None
    assert not torch.equal(bound.weight.detach(), w0)
    dw = bound.weight.detach() - w0
    assert torch.allclose(bound.feedback_as_weight() - r0.t(), dw, atol=1e-14)  # epsilon 1
    plain = FeedbackLinear(5, 3, opts("urfb"), generator=_gen()).to(DT)
    out = plain(x)
    with sequential_steps(plain, 0.1):
        out.backward(g)  # the context at backward time does not matter
    assert plain.weight.grad is not None and torch.equal(plain.weight.detach(), w0)
    assert torch.allclose(-0.1 * plain.weight.grad, dw, atol=1e-14)
