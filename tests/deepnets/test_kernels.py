"""The fast kernels of a step (issue 10) compute what the plain torch expressions compute: the
zero-padded max pool without a padded copy, a spatial layer fused with the pool after it,
sigma' from the layer's output, the CPU dropout masks, bf16 compute with fp32 masters."""

import pytest
import torch
import torch.nn.functional as F

from deepnets.nn.kernels import saturation_backward
from deepnets.nn.layers import (
    Dropout,
    FeedbackConv2d,
    FeedbackRule,
    FeedbackUntied2d,
    LayerOptions,
    ZeroPadMaxPool2d,
)
from deepnets.nn.losses import make_loss
from deepnets.nn.network import FeedbackNet
from deepnets.training.engine import train_step

DT = torch.float64


def _reference_pool(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """The definition: zero padding (k-1)//2 before, as much after as ceil(n/s) windows need."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        out, before = -(-n // s), (k - 1) // 2
        pads += [before, max((out - 1) * s + k - n - before, 0)]
    return F.max_pool2d(F.pad(x, pads), k, s)


def _ties(shape: tuple[int, ...], seed: int, dtype=DT) -> torch.Tensor:
    """Values in {-2, -1, 0, 1, 2} / 2: many exact zeros, negatives and tied maxima."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(-2, 3, shape, generator=g) / 2).to(dtype)


@pytest.mark.parametrize("k,s", [(3, 2), (3, 3), (2, 2), (3, 1), (1, 1), (4, 2), (5, 3)])
@pytest.mark.parametrize("side", [4, 5, 8, 11])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "location_major"])
def test_zero_pad_pool_equals_the_padded_pool(k: int, s: int, side: int, layout: str) -> None:
    for seed in range(3):
        x = _ties((3, 2, side, side), seed)
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        elif layout == "location_major":  # as an untied layer leaves it: (H, W, N, C) in memory
            x = x.permute(2, 3, 0, 1).contiguous().permute(2, 3, 0, 1)
        if seed == 2:
            x = x - 1.5  # every window negative: the border windows take the padding's 0
        a, b = x.detach().requires_grad_(), x.clone().requires_grad_()
        out = ZeroPadMaxPool2d(k, s)(a)
        ref = _reference_pool(b, k, s)
        assert torch.equal(out, ref)
        g = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed), dtype=DT)
        out.backward(g)
        ref.backward(g)
        assert torch.allclose(a.grad, b.grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k,s", [(3, 2), (3, 3), (2, 2)])
@pytest.mark.parametrize("layer_kind", ["conv", "untied"])
@pytest.mark.parametrize("dtype", [DT, torch.float32])
def test_layer_fused_with_its_pool_equals_the_two(k: int, s: int, layer_kind: str,
                                                  dtype: torch.dtype) -> None:
    """pool(sigma(h)) in one function: the same output and the same gradients of the input,
    W and b, with saturated ties at the maximum and windows whose maximum is the padding."""
    opts = LayerOptions(FeedbackRule.make("frfb"), sat_scale=0.5)
    gen = torch.Generator().manual_seed(3)
    if layer_kind == "conv":
        layer = FeedbackConv2d(2, 3, 3, opts, generator=gen).to(dtype)
    else:
        layer = FeedbackUntied2d((2, 11, 11), 3, 3, opts, generator=gen).to(dtype)
    with torch.no_grad():
        layer.weight.mul_(8)  # many saturated units
        layer.bias.copy_(torch.linspace(-1, 1, layer.bias.numel()).view_as(layer.bias))
    pool = ZeroPadMaxPool2d(k, s)
    x = _ties((4, 2, 11, 11), 0, dtype)
    x[0] = 0  # a blank image: exact zeros at the border maxima
    results = []
    for fused in (True, False):
        xi = x.clone().requires_grad_()
        out = layer(xi, pool=pool) if fused else pool(layer(xi))
        g = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
        out.backward(g)
        results.append((out.detach(), xi.grad, layer.weight.grad.clone(), layer.bias.grad.clone()))
        layer.weight.grad = layer.bias.grad = None
    tol = 1e-12 if dtype == DT else 1e-5
    for got, want in zip(*results):
        assert torch.allclose(got, want, rtol=0, atol=tol)


@pytest.mark.parametrize("order", ["sequential", "simultaneous"])
def test_fused_network_equals_the_layer_by_layer_network(order: str) -> None:
    arch = "conv 4 3x3; maxpool 3; drop .5; untied 3 3x3; maxpool 2; full 10; output"
    nets = [FeedbackNet(arch, in_shape=(3, 9, 9), n_classes=4, method="urfb", seed=1).to(DT)
            for _ in range(2)]
    x = torch.rand(6, 3, 9, 9, generator=torch.Generator().manual_seed(0), dtype=DT)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    unfused = nets[1]
    unfused.forward = lambda t: _layer_by_layer(unfused, t)  # type: ignore[method-assign]
    for net in nets:
        torch.manual_seed(5)
        train_step(net, x, y, make_loss("hinge", 4), lr=0.1, update_order=order)
    for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)


def _layer_by_layer(net: FeedbackNet, x: torch.Tensor) -> torch.Tensor:
    for layer in net.layers:
        x = layer(x)
    return x


def test_saturation_backward_reads_sigma_prime_from_the_output() -> None:
    h = torch.linspace(-4, 4, 81, dtype=DT)
    s = 0.5
    out = (s * h).clamp(-1, 1)
    g = torch.randn(81, dtype=DT)
    assert torch.equal(saturation_backward(g, out, s), g * s * ((s * h).abs() < 1))


def test_dropout_masks_follow_the_seed_and_the_rate() -> None:
    drop = Dropout(0.8)
    x = torch.ones(200, 500)
    torch.manual_seed(0)
    a = drop(x)
    torch.manual_seed(0)
    assert torch.equal(a, drop(x))
    assert not torch.equal(a, drop(x))
    assert set(a.unique().tolist()) == {0.0, 5.0}
    assert abs(float((a != 0).float().mean()) - 0.2) < 0.005
    xg = torch.randn(8, 6, 5, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    torch.manual_seed(1)
    out = Dropout(0.3)(xg)
    assert out.is_contiguous(memory_format=torch.channels_last)
    out.backward(torch.ones_like(out))
    assert torch.equal(xg.grad, (out.detach() != 0) * (torch.ones(()) / 0.7))
    drop.eval()
    assert drop(x) is x
    # the mask of a unit depends on the seed and the shape, not on the memory layout
    z = torch.ones(4, 6, 5, 5)
    masks = []
    for layout in (z, z.contiguous(memory_format=torch.channels_last),
                   z.permute(2, 3, 0, 1).contiguous().permute(2, 3, 0, 1)):
        torch.manual_seed(2)
        masks.append(Dropout(0.5)(layout))
    assert torch.equal(masks[0], masks[1]) and torch.equal(masks[0], masks[2])


@pytest.mark.parametrize("arch", [
    "conv 6 5x5; maxpool 3; drop .5; full 20; drop .3; output",
    "conv 4 3x3; conv 4 3x3; sum; maxpool 3; untied 4 3x3; maxpool 2; full 12; output",
])
def test_bf16_step_keeps_fp32_masters_and_is_close_to_fp32(arch: str) -> None:
    """bf16 compute: W, R, b stay float32 and the step's increments are those of fp32 up to
    bf16 rounding (cosine > 0.98 per layer; the loss to 1e-2)."""
    nets = [FeedbackNet(arch, in_shape=(3, 16, 16), method="urfb", seed=0, bias=True)
            for _ in range(2)]
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 16, 16), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (64,), generator=g)
    w0 = [layer.weight.detach().clone() for layer in nets[0].weight_layers]
    r0 = [layer.feedback_as_weight().detach().clone() for layer in nets[0].weight_layers]
    results = []
    for net, precision in zip(nets, ("fp32", "bf16")):
        torch.manual_seed(1)
        results.append(train_step(net, x, y, make_loss("hinge", 10), precision=precision))
    assert results[1].loss == pytest.approx(results[0].loss, abs=1e-2)
    for a, b, w, r in zip(nets[0].weight_layers, nets[1].weight_layers, w0, r0):
        assert b.weight.dtype == b.bias.dtype == b.feedback.dtype == torch.float32
        da, db = (a.weight.detach() - w).flatten(), (b.weight.detach() - w).flatten()
        assert float(F.cosine_similarity(da, db, 0)) > 0.98
        dr = (b.feedback_as_weight() - r).flatten()
        assert torch.allclose(dr, db, rtol=0, atol=1e-6)  # urfb: Delta R = Delta W^t in fp32


def test_every_precision_the_config_offers_is_one_the_engine_runs() -> None:
    """``--precision`` offers what ``train_step`` runs: a step in each keeps float32 masters;
    anything else is refused by both."""
    from deepnets.training.config import PRECISIONS, ConfigError, TrainConfig

    x, y, loss = torch.rand(2, 1, 2, 2), torch.tensor([0, 1]), make_loss("hinge", 2)
    for precision in PRECISIONS:
        net = FeedbackNet("full 4; output", in_shape=(1, 2, 2), n_classes=2, seed=0)
        before = [layer.weight.detach().clone() for layer in net.weight_layers]
        result = train_step(net, x, y, loss, precision=precision)
        assert torch.isfinite(torch.as_tensor(result.loss)), precision
        for layer, w in zip(net.weight_layers, before):
            assert layer.weight.dtype == torch.float32 and not torch.equal(layer.weight, w)
    with pytest.raises(ValueError, match="precision"):
        train_step(FeedbackNet("full 4; output", in_shape=(1, 2, 2), n_classes=2), x, y, loss,
                   precision="fp16")
    with pytest.raises(ConfigError, match="--precision 'fp16'"):
        TrainConfig(epochs=1, data_dir="x", precision="fp16")


def test_fp32_fast_paths_equal_plain_autograd() -> None:
    """In float32 on the CPU the conv layers run channels-last, the conv with its clip fused
    (oneDNN post-op), s folded into W, b and R, and the first conv fused with its pool: one bp
    step is still plain SGD on autograd's gradients of the network written with F ops (up to
    float32 rounding)."""
    arch = "conv 8 5x5; maxpool 3; conv 6 3x3; conv 6 3x3; sum; maxpool 2; full 20; output"
    net = FeedbackNet(arch, in_shape=(3, 12, 12), n_classes=5, method="bp", seed=2, bias=True)
    convs = net.weight_layers
    params = [t.detach().clone().requires_grad_() for layer in convs
              for t in (layer.weight, layer.bias)]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 12, 12, generator=g)
    y = torch.randint(0, 5, (16,), generator=g)
    w0, b0, w1, b1, w2, b2, w3, b3, w4, b4 = params

    def sat(h: torch.Tensor) -> torch.Tensor:
        return (0.5 * h).clamp(-1, 1)

    h = _reference_pool(sat(F.conv2d(x, w0, b0, padding=2)), 3, 2)
    h1 = sat(F.conv2d(h, w1, b1, padding=1))
    h = _reference_pool(h1 + sat(F.conv2d(h1, w2, b2, padding=1)), 2, 2)
    h = sat(F.linear(h.flatten(1), w3, b3))
    loss = F.cross_entropy(F.linear(h, w4, b4), y)
    grads = torch.autograd.grad(loss, params)
    result = train_step(net, x, y, make_loss("softmax", 5), lr=0.5, update_order="simultaneous")
    assert result.loss == pytest.approx(float(loss.detach()), rel=1e-6)
    got = [t for layer in convs for t in (layer.weight, layer.bias)]
    for a, p, q in zip(got, params, grads):
        assert torch.allclose(a.detach(), p.detach() - 0.5 * q, rtol=0, atol=1e-6)


def test_untied_patches_are_kept_only_until_the_backward_pass() -> None:
    net = FeedbackNet("untied 4 3x3; maxpool 2; full 6; output", in_shape=(2, 6, 6),
                      n_classes=3, seed=0)
    untied = net.weight_layers[0]
    x = torch.rand(5, 2, 6, 6)
    train_step(net, x, torch.tensor([0, 1, 2, 0, 1]), make_loss("hinge", 3))
    assert untied.__dict__.get("_patch_cache") is None
    with torch.no_grad():
        net.eval()(x)
    assert untied.__dict__.get("_patch_cache") is None
