"""deepnets.convert on a small ResNet-style model (conv-BN-ReLU blocks with identity shortcuts):
the same forward function; bp gives plain autograd's gradients; urfb with epsilon 1 from a
symmetric start follows bp's trajectory; frfb sends R delta down; every rule trains, is probed,
and runs through the trainer as a named model (resnet-mini)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from deepnets import alignment, convert, make_loss, train_step
from deepnets.nn.convert import ConvertedConv2d, ConvertedLinear
from deepnets.nn.layers import feedback_layers
from deepnets.nn.models import BasicBlock, ConvertedNet, build_net
from deepnets.rules import METHODS, RULES
from deepnets.training.config import ConfigError, TrainConfig
from deepnets.training.trainer import run

C = 5


def small_resnet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), BasicBlock(4),
        nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU(), BasicBlock(6),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, C),
    )  # fmt: skip


def batch(seed: int = 0, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 8, 8, generator=gen), torch.randint(0, C, (n,), generator=gen)


def test_same_forward_and_only_linear_and_conv_replaced() -> None:
    plain = small_resnet()
    for method in METHODS:
        net = convert(plain, method=method)
        kinds = [type(m).__name__ for m in net.modules()]
        assert kinds.count("ConvertedConv2d") == 6 and kinds.count("ConvertedLinear") == 1
        assert kinds.count("BatchNorm2d") == 6 and "Conv2d" not in kinds and "Linear" not in kinds
        x, _ = batch()
        for mode in (True, False):
            assert torch.allclose(net.train(mode)(x), plain.train(mode)(x), atol=1e-6), method
    assert not feedback_layers(plain)  # the original is untouched


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("kwargs", [
    {"stride": 2, "padding": (1, 2)}, {"padding": "same", "kernel_size": 2},
    {"padding": "valid", "bias": False}, {"dilation": 2, "padding": 2, "stride": (2, 1)},
    {"padding": "same", "dilation": (1, 2), "kernel_size": (3, 2)},
])  # fmt: skip
def test_conv_variants_compute_the_same_and_bp_gives_autograds_gradients(kwargs: dict) -> None:
    torch.manual_seed(1)
    k = kwargs.pop("kernel_size", 3)
    plain = nn.Conv2d(3, 4, k, **kwargs)
    net = convert(plain, method="bp")
    assert isinstance(net, ConvertedConv2d)
    x1 = torch.rand(2, 3, 9, 8, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    y1, y2 = plain(x1), net(x2)
    assert y1.shape == y2.shape and torch.allclose(y1, y2, atol=1e-6)
    g = torch.randn_like(y1)
    y1.backward(g)
    y2.backward(g)
    assert torch.allclose(x1.grad, x2.grad, atol=1e-5)
    assert torch.allclose(plain.weight.grad, net.weight.grad, atol=1e-5)
    if plain.bias is not None:
        assert torch.allclose(plain.bias.grad, net.bias.grad, atol=1e-5)


def test_bp_gradients_are_plain_autograds() -> None:
    plain = small_resnet()
    net = convert(plain, method="bp")
    x, y = batch()
    loss_fn = make_loss("softmax", C)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    loss_fn(plain(xa), y).backward()
    loss_fn(net(xb), y).backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-6)
    for (name, p), q in zip(plain.named_parameters(), net.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name


@pytest.mark.parametrize("order", ["simultaneous", "sequential"])
def test_urfb_from_a_symmetric_start_follows_bp(order: str) -> None:
    plain = small_resnet()
    bp = convert(plain, method="bp")
    urfb = convert(plain, method="urfb", epsilon=1.0, symmetric_init=True, seed=4)
    reference = copy.deepcopy(plain)  # plain torch SGD (train_step's other parameters)
    loss_fn = make_loss("hinge", C)
    for step in range(4):
        x, y = batch(step)
        a = train_step(bp, x, y, loss_fn, lr=0.1, update_order=order)
        b = train_step(urfb, x, y, loss_fn, lr=0.1, update_order=order)
        assert a.loss == pytest.approx(b.loss, abs=1e-6)
        if order == "simultaneous":
            train_step(reference, x, y, loss_fn, lr=0.1)
    urfb_params = dict(urfb.named_parameters())  # bp's and R (urfb's feedback parameters)
    for name, p in bp.named_parameters():
        assert torch.allclose(p, urfb_params[name], atol=1e-5), name
    for layer in feedback_layers(urfb):
        assert torch.allclose(layer.feedback_as_weight(), layer.weight, atol=1e-5)
    if order == "simultaneous":
        for p, q in zip(reference.parameters(), bp.parameters()):
            assert torch.allclose(p, q, atol=1e-5)


def test_frfb_sends_R_delta_down() -> None:
    net = convert(small_resnet(), method="frfb", seed=2)
    layers = [net[4], net[10]]  # the stride-2 conv with bias, the linear output layer
    assert isinstance(layers[0], ConvertedConv2d) and isinstance(layers[1], ConvertedLinear)
    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def keep(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        args[0].retain_grad()
        out.retain_grad()
        seen[id(module)] = (args[0], out)

    hooks = [m.register_forward_hook(keep) for m in layers]
    x, y = batch()
    make_loss("hinge", C)(net(x.requires_grad_()), y).backward()
    for h in hooks:
        h.remove()
    conv, lin = layers
    xin, out = seen[id(conv)]
    want = torch.nn.grad.conv2d_input(xin.shape, conv.feedback_as_weight(), out.grad,
                                      stride=2, padding=1)
    assert torch.allclose(xin.grad, want, atol=1e-6)
    assert not torch.allclose(xin.grad, torch.nn.grad.conv2d_input(
        xin.shape, conv.weight, out.grad, stride=2, padding=1), atol=1e-4)
    xin, out = seen[id(lin)]
    assert torch.allclose(xin.grad, out.grad @ lin.feedback.t(), atol=1e-6)  # R delta


@pytest.mark.parametrize("method", METHODS)
def test_every_rule_trains_a_converted_model_and_is_probed(method: str) -> None:
    net = convert(small_resnet(), method=method, connectivity=0.8)
    loss_fn = make_loss("hinge", C)
    for order in ("simultaneous", "sequential"):
        r = train_step(net, *batch(1), loss_fn, lr=0.05, update_order=order)
        assert torch.isfinite(torch.tensor(r.loss))
    probe = alignment(net, *batch(2), loss_fn)
    assert len(probe) == 7 and probe["10"]["update_angle"] is not None
    if RULES[method].error_path == "direct":  # each layer sends B_l e down through its input
        assert probe["10"]["weight_angle"] is None and probe["10"]["delta_angle"] is not None


def test_dfa_converted_orders_agree() -> None:
    a = convert(small_resnet(), method="dfa", seed=3)
    b = copy.deepcopy(a)
    loss_fn = make_loss("softmax", C)
    for step in range(2):
        train_step(a, *batch(step), loss_fn, update_order="simultaneous")
        train_step(b, *batch(step), loss_fn, update_order="sequential")
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-5)


def test_bad_models_are_one_line_errors() -> None:
    for model, fragment in ((nn.Conv2d(4, 4, 3, groups=2), "groups=2"),
                            (nn.Conv2d(3, 4, 3, padding_mode="reflect"), "reflect"),
                            (nn.Sequential(nn.ReLU()), "no nn.Linear or nn.Conv2d"),
                            (nn.Linear(3, 2), "takes no parameter decay")):
        with pytest.raises(ValueError, match=fragment):
            convert(model, method="frfb", **({"decay": 1.0} if "decay" in fragment else {}))
    with pytest.raises(ValueError, match="already holds feedback layers"):
        convert(convert(nn.Linear(3, 2)), method="bp")
    shared = nn.Linear(3, 3)
    net = convert(nn.Sequential(shared, nn.ReLU(), shared), method="urfb")
    assert net[0] is net[2]


def test_resnet_mini_is_a_named_model(image_zips: dict[str, Path], tmp_path: Path) -> None:
    net = build_net("resnet-mini", method="kp", decay=1e-3, seed=1)
    assert isinstance(net, ConvertedNet) and len(net.weight_layers) == 10
    again = build_net(**net.config)
    again.load_state_dict(net.state_dict())
    assert net.config["decay"] == 1e-3 and net.weight_layer_names[-1] == "14"
    with pytest.raises(ConfigError, match="--untied"):
        TrainConfig(epochs=1, data_dir="x", arch="resnet-mini", untied=(0,))
    cfg = TrainConfig(epochs=1, data_dir=str(image_zips["good"]), data="imagefolder",
                      arch="resnet-mini", method="dfa", val_size=8, batch_size=16, probe_size=4,
                      device="cpu")
    result = run(cfg, tmp_path / "run", quiet=True)
    assert result.epochs_done == 1
