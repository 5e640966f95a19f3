"""docs/api.md's contract (issue 19, §5): its code runs as written; a custom loss trains, its
output error is autograd's gradient of the loss; ``bias_lr_scale`` scales the biases' step only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from deepnets import FeedbackNet, convert, make_loss, train_step
from deepnets.nn.layers import feedback_layers

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_the_documented_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {"__name__": "docs_api"})  # noqa: S102


def test_the_output_error_of_a_custom_loss_is_its_autograd_gradient() -> None:
    """bp on a one-layer net: the output layer's step is -lr g^t x with g = d loss / d logits."""
    torch.manual_seed(0)
    plain = nn.Linear(5, 3)
    net = convert(plain, method="urfb")
    x, y = torch.rand(4, 5), torch.tensor([0, 2, 1, 2])

    def cubic(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (logits - labels[:, None].float()).pow(3).abs().mean()

    logits = plain(x).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(cubic(logits, y), logits)
    w0, r0, b0 = net.weight.detach().clone(), net.feedback.clone(), net.bias.detach().clone()
    train_step(net, x, y, cubic, lr=0.1)
    assert torch.allclose(net.weight, w0 - 0.1 * g.t() @ x, atol=1e-6)
    assert torch.allclose(net.bias, b0 - 0.1 * g.sum(0), atol=1e-6)
    assert torch.allclose(net.feedback, r0 - 0.1 * (g.t() @ x).t(), atol=1e-6)  # urfb: R += eps dW^t


@pytest.mark.parametrize("method", ["urfb", "frfb", "kp"])
def test_a_custom_loss_trains(method: str) -> None:
    net = FeedbackNet("full 16; output", in_shape=(8,), n_classes=3, method=method, seed=2)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(32, 8, generator=gen)
    y = (x[:, :3].argmax(1))  # a learnable rule

    def squared_error(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        target = torch.full_like(logits, -1.0).scatter_(1, labels[:, None], 1.0)
        return 0.5 * (logits - target).pow(2).sum(1).mean()

    first = train_step(net, x, y, squared_error, lr=0.1)
    for _ in range(40):
        last = train_step(net, x, y, squared_error, lr=0.1)
    assert last.loss < 0.8 * first.loss and last.errors < first.errors


@pytest.mark.parametrize("order", ["simultaneous", "sequential"])
@pytest.mark.parametrize("method", ["urfb", "kp", "dfa", "usf"])
def test_bias_lr_scale_scales_the_bias_step_only(method: str, order: str) -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 2, 4, 4, generator=gen), torch.randint(0, 10, (6,), generator=gen)
    nets = {k: FeedbackNet("conv 3 3x3; maxpool 2; full 6; output", in_shape=(2, 4, 4),
                           method=method, seed=1, bias=True) for k in (1.0, 3.0, 0.0)}
    start = {n: b.detach().clone() for n, b in nets[1.0].named_parameters() if "bias" in n}
    for k, net in nets.items():
        train_step(net, x, y, make_loss("hinge", 10), update_order=order, bias_lr_scale=k)
    ref = dict(nets[1.0].named_parameters())
    for k, net in nets.items():
        for name, p in net.named_parameters():
            if "bias" in name:
                step = ref[name].detach() - start[name]
                assert torch.allclose(p - start[name], k * step, atol=1e-7), (k, name)
            else:
                assert torch.equal(p, ref[name]), (k, name)  # W exactly as with k = 1
        for a, b in zip(feedback_layers(net), feedback_layers(nets[1.0])):
            assert a.feedback is None or torch.equal(a.feedback, b.feedback)
    assert any(not torch.equal(ref[n], b) for n, b in start.items())  # the biases did move


def test_bias_lr_scale_must_be_a_finite_non_negative_number() -> None:
    net = FeedbackNet("full 4; output", in_shape=(3,), method="urfb")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.rand(2, 3), torch.tensor([0, 1])
    for bad in (-1.0, float("nan"), float("inf"), "2", True):
        with pytest.raises(ValueError, match="bias_lr_scale"):
            train_step(net, x, y, make_loss("hinge", 10), bias_lr_scale=bad)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
