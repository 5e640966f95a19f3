"""Training and evaluation steps: plain SGD on W, Hebbian updates of R (Section 3.1, Section 4).

``train_step`` runs one forward/backward pass and applies, per weight layer,
``W <- W + lr dW`` and (urfb) ``R <- R + epsilon lr dW^t``, with ``dW = delta x^t`` averaged
over the batch, keeping masked entries at zero and frozen layers fixed.  In the
``simultaneous`` order all increments come from one backward pass; in the ``sequential`` order
(Remark 1, Figure 15) each layer's W and R are updated before its feedback is sent to the layer
below (done inside the autograd Function's backward).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from deepnets.layers import FeedbackLayer, FeedbackUntied2d, feedback_layers

if TYPE_CHECKING:
    from deepnets.network import FeedbackNet

__all__ = ["UPDATE_ORDERS", "StepResult", "evaluate", "freeze", "train_step", "untie"]

UPDATE_ORDERS = ("simultaneous", "sequential")
LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class StepResult:
    """Mean loss of the batch (before the update), number misclassified, batch size."""

    loss: float
    errors: int
    n: int


def _as_input(x: Tensor, net: nn.Module) -> Tensor:
    """uint8 images -> floats in [0, 1] (Section 4: no other preprocessing) of the net's dtype."""
    if x.is_floating_point():
        return x
    dtype = next(net.parameters()).dtype
    return x.to(dtype) / 255.0


@contextmanager
def _sequential(layers: list[FeedbackLayer], lr: float) -> Iterator[None]:
    for layer in layers:
        layer._sequential_lr = lr
    try:
        yield
    finally:
        for layer in layers:
            layer._sequential_lr = None


def train_step(
    net: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: LossFn,
    *,
    lr: float = 0.1,
    update_order: str = "simultaneous",
) -> StepResult:
    """One SGD step on the batch (x, y); works for any module built of feedback layers
    (other parameters, if any, get plain SGD)."""
    if update_order not in UPDATE_ORDERS:
        raise ValueError(f"update_order must be one of {UPDATE_ORDERS}, got {update_order!r}")
    layers = feedback_layers(net)
    net.train()
    x = _as_input(x, net)
    if update_order == "sequential":
        with _sequential(layers, lr):
            logits = net(x)
            loss = loss_fn(logits, y)
            loss.backward()
    else:
        logits = net(x)
        loss = loss_fn(logits, y)
        loss.backward()
        for layer in layers:
            if layer.weight.grad is not None:
                layer.apply_update(layer.weight.grad, layer.bias.grad, lr)
    with torch.no_grad():
        own = {id(p) for layer in layers for p in (layer.weight, layer.bias)}
        for p in net.parameters():
            if id(p) not in own and p.grad is not None:
                p.add_(p.grad, alpha=-lr)
            p.grad = None
        errors = int((logits.argmax(1) != y).sum())
    return StepResult(float(loss.detach()), errors, int(y.shape[0]))


@torch.no_grad()
def evaluate(
    net: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn, *, batch_size: int = 1000
) -> tuple[float, float]:
    """(mean loss, error rate) of ``net`` on (x, y), in eval mode (no dropout), without gradients."""
    was_training = net.training
    net.eval()
    total_loss, errors = 0.0, 0
    try:
        for start in range(0, y.shape[0], batch_size):
            xb, yb = _as_input(x[start : start + batch_size], net), y[start : start + batch_size]
            logits = net(xb)
            total_loss += float(loss_fn(logits, yb)) * yb.shape[0]
            errors += int((logits.argmax(1) != yb).sum())
    finally:
        net.train(was_training)
    n = max(int(y.shape[0]), 1)
    return total_loss / n, errors / n


def untie(net: FeedbackNet, layers: Collection[int]) -> FeedbackNet:
    """A copy of a FeedbackNet with the conv weight layers ``layers`` made untied (Section 4.1),
    each location starting from the conv's W, R and masks, so that it computes the same function."""
    from deepnets.network import FeedbackNet  # local import: network imports the layers too

    config = dict(net.config, untied=sorted(set(net.config["untied"]) | set(layers)))
    new = FeedbackNet(**config).to(next(net.parameters()))
    for old, fresh in zip(net.weight_layers, new.weight_layers):
        if isinstance(fresh, FeedbackUntied2d) and not isinstance(old, FeedbackUntied2d):
            fresh.copy_from_conv(old)
        else:
            fresh.load_state_dict(copy.deepcopy(old.state_dict()))
        fresh.frozen = old.frozen
    return new


def freeze(net: FeedbackNet, layers: Collection[int]) -> None:
    """Freeze the given weight layers of a FeedbackNet: W and R stay fixed, feedback still flows."""
    wl = net.weight_layers
    for i in layers:
        if not 0 <= i < len(wl):
            raise ValueError(f"freeze: weight layer index {i} out of range 0..{len(wl) - 1}")
        wl[i].frozen = True
    net.config["frozen"] = sorted(set(net.config["frozen"]) | set(layers))
