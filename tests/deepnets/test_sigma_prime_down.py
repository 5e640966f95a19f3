"""``sigma_prime_down=False``: hidden layers send the error down as R g, without their sigma'
(the author's code after April 2019), against eq. (2)'s R (sigma' g) by default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deepnets.nn import reference
from deepnets.nn.alignment import alignment
from deepnets.nn.layers import BackwardRoute, ZeroPadMaxPool2d, route_backward
from deepnets.nn.losses import make_loss
from deepnets.nn.network import FeedbackNet
from deepnets.training.config import ConfigError, TrainConfig
from deepnets.training.engine import train_step
from deepnets.training.runconfig import resumed_config

DT = torch.float64
SHAPE = (3, 6, 6)
ORDERS = ("simultaneous", "sequential")
KINDS = {
    "dense": "full 7; full 6; output",
    "conv": "conv 3 3x3; conv 2 2x2; full 5; output",
    "untied": "untied 3 3x3; conv 2 3x3; output",
    "pooled": "conv 3 3x3; maxpool 3; untied 2 3x3; maxpool 2; full 4; output",
}


def _batch(seed: int, n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *SHAPE, generator=g, dtype=DT) * 4 - 1  # many saturated units
    return x, torch.randint(0, 4, (n,), generator=g)


def _trained(arch: str, order: str, steps: int = 3, **kw) -> FeedbackNet:
    net = FeedbackNet(arch, in_shape=SHAPE, n_classes=4, seed=1, **kw).to(DT)
    for step in range(steps):
        train_step(net, *_batch(step), make_loss("hinge", 4), lr=0.2, update_order=order)
    return net


@pytest.mark.parametrize("order", ORDERS)
def test_three_layer_urfb_matches_the_author_s_error_written_by_hand(order: str) -> None:
    """full 6; full 5; output with urfb: each hidden layer's own delta keeps sigma' (eq. (2),
    (3)), but the error it sends down is R g, g the error that reached it (Remark 1's updated
    R in the sequential order)."""
    net = FeedbackNet("full 6; full 5; output", in_shape=SHAPE, n_classes=4, method="urfb",
                      epsilon=0.5, sigma_prime_down=False, seed=3).to(DT)
    x, y = _batch(5)
    x = 4 * x  # saturates some of layer 2's units
    (w1, r1), (w2, r2), (w3, r3) = ((layer.weight.detach().clone(),
                                     layer.feedback.detach().clone())
                                    for layer in net.weight_layers)
    lr, s, eps, n, mu = 0.3, 0.5, 0.5, x.shape[0], 1 / 3
    x0 = x.reshape(n, -1)
    h1 = x0 @ w1.t()
    x1 = (s * h1).clamp(-1, 1)
    h2 = x1 @ w2.t()
    x2 = (s * h2).clamp(-1, 1)
    h3 = x2 @ w3.t()
    onehot = torch.nn.functional.one_hot(y, 4).bool()
    d3 = torch.where(onehot, (h3 <= 1).to(DT), -mu * (h3 >= -1).to(DT))  # eq. (6)
    dw3 = d3.t() @ x2 / n
    r3_new = r3 + eps * lr * dw3.t()
    g2 = d3 @ (r3_new if order == "sequential" else r3).t()  # the error reaching layer 2
    d2 = s * ((s * h2).abs() < 1) * g2
    dw2 = d2.t() @ x1 / n
    r2_new = r2 + eps * lr * dw2.t()
    g1 = g2 @ (r2_new if order == "sequential" else r2).t()  # R g: no sigma' of layer 2
    d1 = s * ((s * h1).abs() < 1) * g1
    dw1 = d1.t() @ x0 / n
    assert ((s * h2).abs() >= 1).any()  # layer 2 has saturated units, where the rules differ
    train_step(net, x, y, make_loss("hinge", 4), lr=lr, update_order=order)
    l1, l2, l3 = net.weight_layers
    for got, want in [(l3.weight, w3 + lr * dw3), (l2.weight, w2 + lr * dw2), (l2.feedback, r2_new),
                      (l1.weight, w1 + lr * dw1), (l1.feedback, r1 + eps * lr * dw1.t())]:
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("method", ["bp", "frfb", "urfb"])
def test_fast_path_equals_reference_path(method: str, kind: str, order: str) -> None:
    fast = _trained(KINDS[kind], order, method=method, sigma_prime_down=False)
    ref = _trained(KINDS[kind], order, method=method, sigma_prime_down=False, fast=False)
    for name, value in ref.state_dict().items():
        torch.testing.assert_close(fast.state_dict()[name], value, rtol=1e-9, atol=1e-12,
                                   msg=lambda m, k=name: f"{k}: {m}")


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("fast", [True, False])
def test_only_layers_below_a_saturating_layer_change(order: str, fast: bool) -> None:
    """The output and the top hidden layer see the same error either way; the layer below the
    top hidden one gets R g instead of R delta, a different update."""
    arch = KINDS["conv"]
    default = _trained(arch, order, steps=1, fast=fast)
    author = _trained(arch, order, steps=1, fast=fast, sigma_prime_down=False)
    (*below, top_hidden, out_d), (*below_a, top_hidden_a, out_a) = (
        default.weight_layers, author.weight_layers)
    assert torch.equal(out_d.weight, out_a.weight)
    assert torch.equal(top_hidden.weight, top_hidden_a.weight)
    assert not torch.allclose(below[-1].weight, below_a[-1].weight)
    assert "sigma_prime_down" not in default.config
    assert author.config["sigma_prime_down"] is False


def test_the_exact_route_keeps_sigma_prime() -> None:
    """The alignment probe's back-propagation (the exact route) is the same with either
    setting: the option changes the rule's feedback only."""
    grads = []
    for down in (True, False):
        net = FeedbackNet(KINDS["pooled"], in_shape=SHAPE, n_classes=4, seed=2,
                          sigma_prime_down=down).to(DT)
        x, y = _batch(7)
        x.requires_grad_()
        route = BackwardRoute()
        route.exact = True
        with route_backward(route):
            loss = make_loss("hinge", 4)(net(x), y)
        (grad,) = torch.autograd.grad(loss, x)
        grads.append(grad)
    # the same to rounding (the default fuses each conv with its pool, the option does not)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-15)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="FeedbackNet: sigma_prime_down must be True or False"):
        FeedbackNet("full 4; output", in_shape=SHAPE, n_classes=4, sigma_prime_down="no")
    with pytest.raises(ValueError, match="method 'dfa' sends its output error"):
        FeedbackNet("full 4; output", in_shape=SHAPE, n_classes=4, method="dfa",
                    sigma_prime_down=False)
    base = {"epochs": 1, "data_dir": "d", "sigma_prime_down": False}
    with pytest.raises(ConfigError, match="--no-sigma-prime-down: --arch resnet-mini is a conv"):
        TrainConfig(**base, arch="resnet-mini")
    with pytest.raises(ConfigError, match="--no-sigma-prime-down: --method dfa sends"):
        TrainConfig(**base, method="dfa")



@pytest.mark.parametrize("fast", [True, False])
def test_the_author_s_pool_passes_a_window_s_error_to_every_tied_maximum(fast: bool) -> None:
    """Without ties it is the usual pool; where a window's maximum is tied (units saturated at
    +1, say), every tied entry gets the window's error (the author's ``grad_pool``)."""
    pool = ZeroPadMaxPool2d(3, 2, all_ties=True)
    pool.fast = fast
    x = torch.randn(2, 3, 7, 7, dtype=DT)
    plain = x.clone().requires_grad_()
    tied = x.clone().requires_grad_()
    g = torch.randn(2, 3, 4, 4, dtype=DT)
    reference.zero_pad_max_pool(plain, 3, 2).backward(g)
    out = pool(tied)
    out.backward(g)
    torch.testing.assert_close(out, reference.zero_pad_max_pool(x, 3, 2), rtol=0, atol=0)
    torch.testing.assert_close(tied.grad, plain.grad, rtol=1e-14, atol=1e-15)  # sums' order
    one = torch.full((1, 1, 4, 4), -1.0, dtype=DT)
    one[0, 0, 0, 0] = one[0, 0, 1, 1] = one[0, 0, 3, 3] = 1.0  # a tie in the first window
    one.requires_grad_()
    pool(one).backward(torch.arange(1.0, 5.0, dtype=DT).view(1, 1, 2, 2))
    # the windows cover rows x columns 0-1 x 0-1, 0-1 x 1-3, 1-3 x 0-1, 1-3 x 1-3 (one row and
    # column of zero padding before): (0, 0) and (1, 1) tie in the first, (1, 1) and (3, 3) in
    # the last; one maximum per window would give (0, 0) 1, (1, 1) 1 + 2 + 3 (no 4), (3, 3) 0
    want = torch.zeros(4, 4, dtype=DT)
    want[0, 0], want[1, 1], want[3, 3] = 1.0, 1.0 + 2.0 + 3.0 + 4.0, 4.0
    torch.testing.assert_close(one.grad[0, 0], want, rtol=0, atol=0)


def test_untied_layers_keep_sigma_prime() -> None:
    """The author's untied (sparse) layers apply sigma' before sending: an untied layer sends
    R delta down either way, so a net whose only sending hidden layer is untied trains the same."""
    arch = "conv 3 3x3; untied 2 3x3; output"
    for order in ORDERS:
        a = _trained(arch, order, sigma_prime_down=False).state_dict()
        b = _trained(arch, order).state_dict()
        for name, value in b.items():
            torch.testing.assert_close(a[name], value, rtol=0, atol=0)


def test_the_probe_measures_every_layer() -> None:
    """The alignment probe's local angle exists for every layer with a learning layer below,
    also where the error goes down without sigma'."""
    for down in (True, False):
        net = FeedbackNet(KINDS["conv"], in_shape=SHAPE, n_classes=4, seed=2,
                          sigma_prime_down=down).to(DT)
        metrics = alignment(net, *_batch(4), make_loss("hinge", 4))
        local = [m["local_delta_angle"] for m in metrics.values()]
        assert local[0] is None and all(v is not None for v in local[1:]), (down, local)


def test_resume_names_the_flag(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TrainConfig(epochs=1, data_dir="d")
                                                   .to_json_dict()))
    with pytest.raises(ConfigError, match=r"^--no-sigma-prime-down False differs from the "
                       r"run's config.json \(True\)"):
        resumed_config(folder, {"sigma_prime_down": False})
