"""Weight mirror (deepnets/rules/wm.py, Akrout et al. 2019): the update is the stated Hebbian
product of the mirror noise and the layer's response, with decay; R aligns with W^t; the rule
trains simpnet, is probed, and runs end to end through ``python -m deepnets.train``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from deepnets import FeedbackNet, alignment, make_loss, train_step
from deepnets.nn.layers import FeedbackConv2d, FeedbackLinear, FeedbackRule, LayerOptions
from deepnets.training.rundir import read_log

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"mirror_lr": 1.25, "noise": 0.2, "decay": 0.05}  # mirror_lr noise^2 = decay


def _layer(kind: str) -> torch.nn.Module:
    opts = LayerOptions(FeedbackRule.make("wm", **PARAMS), connectivity=0.7)
    gen = torch.Generator().manual_seed(1)
    if kind == "dense":
        return FeedbackLinear(6, 4, opts, generator=gen)
    return FeedbackConv2d(2, 3, 3, opts, generator=gen)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_one_mirror_phase_is_decay_plus_the_hebbian_product_of_noise_and_response(kind: str) -> None:
    """R^t <- (1 - decay) R^t + mirror_lr <(W x) x^t>, x ~ N(0, noise^2) of the input's shape,
    W the stepped W; masked entries of R stay zero."""
    layer = _layer(kind)
    x = torch.rand(5, 6) if kind == "dense" else torch.rand(5, 2, 4, 4)
    out = layer(x)
    out.sum().backward()
    r0 = layer.feedback_as_weight().clone()
    torch.manual_seed(7)
    layer.step(layer.weight.grad, layer.bias.grad, 0.1)
    torch.manual_seed(7)
    noise = torch.empty(x.shape).normal_(0.0, PARAMS["noise"])
    w = layer.weight.detach()
    if kind == "dense":
        hebb = (noise @ w.t()).t() @ noise
    else:
        y = F.conv2d(noise, w, padding=1)
        hebb = torch.nn.grad.conv2d_weight(noise, w.shape, y, padding=1)
    uses = x.shape[0] * (1 if kind == "dense" else 16)  # examples x the conv's 4x4 pixels
    expected = (1 - PARAMS["decay"]) * r0 + PARAMS["mirror_lr"] * hebb / uses
    expected = expected * layer._as_weight_layout(layer.mask_feedback)
    assert torch.allclose(layer.feedback_as_weight(), expected, atol=1e-6)
    assert not torch.allclose(layer.feedback_as_weight(), r0, atol=1e-3)


@pytest.mark.parametrize("order", ["simultaneous", "sequential"])
def test_R_aligns_with_W_transpose(order: str) -> None:
    net = FeedbackNet("conv 4 3x3; maxpool 3 stride 2; full 12; output", in_shape=(2, 6, 6),
                      n_classes=4, method="wm", seed=2, **PARAMS)
    loss_fn = make_loss("hinge", 4)
    gen = torch.Generator().manual_seed(0)
    start = net.correlations()
    for _ in range(40):
        x, y = torch.rand(16, 2, 6, 6, generator=gen), torch.randint(0, 4, (16,), generator=gen)
        train_step(net, x, y, loss_fn, lr=0.05, update_order=order)
    end = net.correlations()
    assert all(abs(c) < 0.3 for c in start)  # R drawn independently of W
    assert all(c > 0.9 for c in end), end
    for layer in net.weight_layers:  # the fixed point is W^t itself: mirror_lr noise^2 = decay
        w, r = layer.weight.detach(), layer.feedback_as_weight()
        assert 0.7 < float(r.norm() / w.norm()) < 1.3


def test_default_wm_trains_simpnet_and_is_probed() -> None:
    torch.manual_seed(0)
    net = FeedbackNet("simpnet", method="wm")
    assert net.config["mirror_lr"] == 1.0 and net.config["decay"] == 0.01
    loss_fn = make_loss("hinge", 10)
    gen = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (4, 3, 32, 32), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, 10, (4,), generator=gen)
    before = net.correlations()
    for _ in range(2):
        assert torch.isfinite(torch.tensor(train_step(net, x, y, loss_fn).loss))
    after = net.correlations()
    assert all(b > a for a, b in zip(before, after))  # every layer's R moved toward W^t
    probe = alignment(net, x, y, loss_fn)
    assert list(probe) == net.weight_layer_names
    assert all(m["weight_angle"] is not None and m["update_angle"] is not None
               for m in probe.values())


def test_train_cli_runs_wm_end_to_end(cifar: Path, tmp_path: Path) -> None:
    out = tmp_path / "wm"
    done = subprocess.run(
        [sys.executable, "-m", "deepnets.train", "--method", "wm", "--rule-param", "decay=0.05",
         "--arch", "conv 4 3x3; maxpool 3; full 16; output", "--data-dir", str(cifar),
         "--epochs", "2", "--val-size", "8", "--batch-size", "8", "--probe-size", "4",
         "--device", "cpu", "--quiet", "--out", str(out)],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    log = read_log(out)
    assert len(log) == 2 and log[-1]["corr"][0] > log[0]["corr"][0]
    assert log[-1]["alignment"]["output"]["weight_angle"] is not None
