"""Training and evaluation steps: plain SGD on W, Hebbian updates of R (Section 3.1, Section 4).

``train_step`` runs one forward/backward pass and steps every weight layer through its one path,
:meth:`deepnets.nn.layers.FeedbackLayer.step`: ``W <- W + dW`` with ``dW = -lr delta x^t`` averaged
over the batch, then R as the layer's rule says (urfb: ``R <- R + epsilon dW^t``), keeping masked
entries at zero and frozen layers fixed.  In the ``sequential`` order (Remark 1, Figure 15; the
default for plain SGD; the author's code after April 2019 steps in this order too, but sends
the error down without eq. (2)'s sigma' factor: ``docs/results.md``) each layer steps inside
the backward pass, before its feedback is sent to the layer below
(:func:`deepnets.nn.layers.sequential_steps`); in the ``simultaneous`` order every layer steps
after the one backward pass (what the author's code of the paper's era did in effect:
``docs/results.md``, "Which update order is the paper's?").

``train_step(..., optimizer=opt)`` lets any :mod:`torch.optim` optimizer take the step instead
(simultaneous order only, the default with an optimizer): the rules write their directions into
``.grad`` and the optimizer moves W, b and R (``docs/rules.md``, "Rules under an optimizer").
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Collection
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from deepnets.nn import checks
from deepnets.nn.layers import FeedbackLayer, FeedbackUntied2d, feedback_layers, sequential_steps
from deepnets.nn.network import FeedbackNet
from deepnets.nn.policy import COMPUTE_DTYPES, execution_policy
from deepnets.training.bias_step import scaled_bias_step
from deepnets.training.cpu import keep_freed_memory
from urfb_common import images_to_float

__all__ = [
    "UPDATE_ORDERS",
    "StepResult",
    "dropping_layers",
    "evaluate",
    "evaluate_with_counts",
    "freeze",
    "train_step",
    "train_step_on_device",
    "untie",
]

UPDATE_ORDERS = ("simultaneous", "sequential")
LossFn = Callable[[Tensor, Tensor], Tensor]


class _DefaultLR(float):
    """A float that marks the default ``lr`` (the paper's 0.1, Section 4), so that an ``lr``
    given beside an optimizer can be refused."""

    def __repr__(self) -> str:
        return float.__repr__(self)


DEFAULT_LR = _DefaultLR(0.1)


@dataclass
class StepResult:
    """Mean loss of the batch (before the update), number misclassified, batch size."""

    loss: float
    errors: int
    n: int


def _as_input(x: Tensor, net: nn.Module, precision: str = "fp32") -> Tensor:
    """uint8 images -> floats in [0, 1] (Section 4: no other preprocessing) of the net's dtype,
    then in the compute dtype of ``precision`` (bf16: the layers compute in bfloat16)."""
    if precision not in COMPUTE_DTYPES:
        raise ValueError(f"precision must be one of {tuple(COMPUTE_DTYPES)}, got {precision!r}")
    x = images_to_float(x, next(net.parameters()).dtype)
    dtype = COMPUTE_DTYPES[precision]
    return x if dtype is None else x.to(dtype)


def _loss_input(logits: Tensor) -> Tensor:
    """The logits as the loss takes them: bf16 ones in float32 (the loss of a batch is a sum of
    N x C terms; its N x C cost is nothing beside the layers'), others as they are."""
    return logits.float() if logits.dtype == torch.bfloat16 else logits


def train_step(
    net: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: LossFn,
    *,
    lr: float = DEFAULT_LR,
    update_order: str | None = None,
    precision: str = "fp32",
    bias_lr_scale: float = 1.0,
    optimizer: torch.optim.Optimizer | None = None,
) -> StepResult:
    """One step on the batch (x, y); works for any module built of feedback layers.
    Without ``optimizer``: plain SGD of size ``lr`` (default 0.1) on W, b and every other
    parameter, R as the rule says (the paper's step). With ``optimizer`` (any
    :class:`torch.optim.Optimizer` holding the net's parameters, R included:
    ``net.parameters()``): each feedback layer writes its direction into ``.grad``
    (:meth:`deepnets.nn.layers.FeedbackLayer.write_grads`: W's delta x^t, R's by its rule), other
    parameters keep autograd's gradients, and ``optimizer.step()`` moves them all; the learning
    rate is then the optimizer's (``lr`` must not be given) and a scheduler is stepped by the
    caller. ``docs/rules.md`` ("Rules under an optimizer") says what each rule then does.
    ``precision="bf16"``: the forward and backward passes compute in bfloat16, W, R and b
    stay float32 and take float32 updates.

    ``loss_fn(logits, labels)`` returns the mean loss over the batch as a 0-d tensor; the
    output error delta_L is the autograd gradient of that loss with respect to the logits
    (``docs/api.md``). Bad input is a one-line ValueError raised before any weight changes
    (:mod:`deepnets.nn.checks`): a non-finite ``lr``, NaN/inf in a float ``x``, labels that do not
    match the batch or the outputs, a loss or output error that is not finite, an optimizer
    with the sequential order or without a learning layer's W or R.

    ``bias_lr_scale``: the feedback layers' biases step ``bias_lr_scale * lr``
    (:mod:`deepnets.training.bias_step`; default 1, the paper's one step for W and b; plain SGD
    only: with an optimizer give the biases a parameter group of their own).

    ``update_order``: ``"sequential"`` (Remark 1) or ``"simultaneous"``; by default the
    sequential order for plain SGD (the paper's protocol) and the simultaneous one under an
    optimizer (the only one it can take)."""
    if optimizer is not None and bias_lr_scale != 1:
        raise ValueError("train_step: bias_lr_scale applies to plain SGD; with an optimizer give "
                         "the biases a parameter group with their own lr")
    with checks.finite_step(net, x, y, loss_fn) as checked_loss, \
            scaled_bias_step(net, bias_lr_scale):
        loss, errors = train_step_on_device(net, x, y, checked_loss, lr=lr,
                                            update_order=update_order, precision=precision,
                                            optimizer=optimizer)
    return StepResult(float(loss), int(errors), int(y.shape[0]))


def train_step_on_device(
    net: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: LossFn,
    *,
    lr: float = DEFAULT_LR,
    update_order: str | None = None,
    precision: str = "fp32",
    optimizer: torch.optim.Optimizer | None = None,
) -> tuple[Tensor, Tensor]:
    """:func:`train_step` without synchronising: (batch mean loss, misclassified count) as
    0-d tensors on the batch's device, so a GPU loop needs no ``.item()`` per step. It makes
    only the host checks of :func:`deepnets.nn.checks.check_step` (no value is read)."""
    if update_order is None:
        update_order = "sequential" if optimizer is None else "simultaneous"
    if update_order not in UPDATE_ORDERS:
        raise ValueError(f"update_order must be one of {UPDATE_ORDERS}, got {update_order!r}")
    layers = feedback_layers(net)
    if optimizer is not None:
        _check_optimizer(optimizer, layers, lr, update_order)
    loss_fn = checks.check_step(net, x, y, loss_fn, lr=lr)
    if execution_policy(x.device.type).keep_freed_memory:
        keep_freed_memory()  # a step reuses the pages of the last one (deepnets.training.cpu)
    net.train()
    x = _as_input(x, net, precision)
    with sequential_steps(net, lr) if update_order == "sequential" else nullcontext():
        logits = net(x)
        loss = loss_fn(_loss_input(logits), y)
        loss.backward()
    if optimizer is not None:
        _optimizer_step(net, layers, optimizer)
    else:
        _plain_sgd_step(net, layers, lr, update_order)
    with torch.no_grad():
        errors = (logits.argmax(1) != y).sum()
    return loss.detach(), errors


def _plain_sgd_step(net: nn.Module, layers: list[FeedbackLayer], lr: float,
                    update_order: str) -> None:
    """The paper's step: each feedback layer's :meth:`FeedbackLayer.step` (already taken inside
    the backward pass in the sequential order), plain SGD on every other parameter."""
    if update_order == "simultaneous":  # every layer's step after the one backward pass
        for layer in layers:
            if layer.weight.grad is not None:
                bias_grad = None if layer.bias is None else layer.bias.grad
                layer.step(layer.weight.grad, bias_grad, lr)
    with torch.no_grad():
        own = {id(p) for layer in layers for p in (layer.weight, layer.bias)}
        for p in net.parameters():
            if id(p) not in own and p.grad is not None:
                p.add_(p.grad, alpha=-lr)
            p.grad = None


def _optimizer_step(net: nn.Module, layers: list[FeedbackLayer],
                    optimizer: torch.optim.Optimizer) -> None:
    """The rules' directions into ``.grad``, the optimizer's step, then what the rules do
    outside it (masks, sign rules' R from W, wm's mirror phase); the gradients cleared."""
    for layer in layers:
        layer.write_grads()
    optimizer.step()
    group_lr = {id(p): float(g["lr"]) for g in optimizer.param_groups for p in g["params"]}
    for layer in layers:
        layer.after_optimizer_step(group_lr.get(id(layer.weight), 0.0))
    for p in net.parameters():
        p.grad = None


def _check_optimizer(optimizer: Any, layers: list[FeedbackLayer], lr: float,
                     update_order: str) -> None:
    """A one-line ValueError unless ``optimizer`` can step the layers (see :func:`train_step`)."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(  # noqa: TRY004 (bad input is a ValueError, as in deepnets.nn.checks)
            f"train_step: optimizer must be a torch.optim.Optimizer, got "
            f"{type(optimizer).__name__}")
    if lr is not DEFAULT_LR:
        raise ValueError("train_step: with an optimizer the learning rate is the optimizer's; "
                         "do not pass lr")
    if update_order != "simultaneous":
        raise ValueError("train_step: update_order='sequential' steps each layer inside the "
                         "backward pass (Remark 1), which a torch optimizer cannot; use "
                         "'simultaneous' with an optimizer")
    for group in optimizer.param_groups:  # NaN/inf would make every parameter NaN in one step
        for key, value in group.items():
            values = value if isinstance(value, tuple) else (value,)  # Adam's betas
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise ValueError(f"train_step: the optimizer's {key} is {value!r}; it must be "
                                 "finite")
        if isinstance(group.get("lr"), float) and group["lr"] < 0:
            raise ValueError(f"train_step: the optimizer's lr is {group['lr']!r}; it must be >= 0")
    held = {id(p) for g in optimizer.param_groups for p in g["params"]}
    for i, layer in enumerate(layers):
        if layer.frozen:
            continue
        needed = [("W", layer.weight)]
        if layer.feedback is not None and layer.rule.feedback_by_gradient:
            needed.append(("R (feedback)", layer.feedback))
        for what, p in needed:
            if id(p) not in held:
                raise ValueError(f"train_step: the optimizer does not hold feedback layer {i}'s "
                                 f"{what}; build it from net.parameters()")


@torch.no_grad()
def evaluate(
    net: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn, *, batch_size: int = 1000,
    precision: str = "fp32", dropout: bool | Collection[int] = False, samples: int = 1,
) -> tuple[float, float]:
    """(mean loss, error rate) of ``net`` on (x, y), in eval mode (no dropout), without gradients.
    ``dropout``: the dropout layers drop as in training (one mask per batch, from torch's global
    generator: seed it first), every other module stays in eval mode (BatchNorm's statistics
    are not updated): the network a training step computes with, for a diagnostic; a
    collection of indices drops in those dropout layers only (0: the net's first ``nn.Dropout``).
    ``samples`` (with ``dropout``): the logits are the mean over that many masks per batch
    (Monte Carlo dropout, Gal and Ghahramani 2016, here on the logits, which suits the hinge
    loss; for softmax that is the normalised geometric mean of the probabilities). The net
    without dropout is the usual cheaper stand-in for that mean (Srivastava et al. 2014, the
    paper's [26]). ``precision="bf16"``: the forward pass computes in bfloat16, as
    :func:`train_step`'s does, and the loss in float32 from its logits; the sums accumulate on
    the device (float64 loss) and are read once. A one-line ValueError for an empty or
    mismatched batch, labels outside the outputs, NaN/inf in a float ``x``, an unknown
    ``precision`` or bad ``samples``. Every module's train/eval mode is restored."""
    loss, error, _ = evaluate_with_counts(net, x, y, loss_fn, batch_size=batch_size,
                                          precision=precision, dropout=dropout, samples=samples)
    return loss, error


@torch.no_grad()
def evaluate_with_counts(
    net: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn, *, batch_size: int = 1000,
    precision: str = "fp32", dropout: bool | Collection[int] = False, samples: int = 1,
) -> tuple[float, float, Tensor]:
    """:func:`evaluate`'s (mean loss, error rate), and how many images the net puts in each of
    its classes (int64, one count per output) by the same logits: a diagnostic for a network
    that predicts one class for most images."""
    loss_fn = checks.checked_evaluation(x, y, loss_fn, batch_size)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
    dropping = dropping_layers(net, dropout)
    if samples > 1 and not dropping:
        raise ValueError(f"samples={samples} averages dropout masks: pass dropout=True")
    total_loss = torch.zeros((), dtype=torch.float64, device=y.device)
    errors = torch.zeros((), dtype=torch.int64, device=y.device)
    counts: Tensor | None = None
    modes = [(module, module.training) for module in net.modules()]
    net.eval()
    for module in dropping:
        module.train()
    try:
        for start in range(0, y.shape[0], batch_size):
            xb = _as_input(x[start : start + batch_size], net, precision)
            yb = y[start : start + batch_size]
            logits = _mean_logits(net, xb, samples)
            total_loss += loss_fn(_loss_input(logits), yb).double() * yb.shape[0]
            predicted = logits.argmax(1)
            errors += (predicted != yb).sum()
            if counts is None:
                counts = torch.zeros(logits.shape[1], dtype=torch.int64, device=y.device)
            # scatter_add_, not bincount: bincount reads its input's maximum back to the host
            counts.scatter_add_(0, predicted, torch.ones_like(predicted))
    finally:
        for module, mode in modes:
            module.training = mode
    assert counts is not None  # checked_evaluation refused an empty x
    n = int(y.shape[0])
    return float(total_loss) / n, int(errors) / n, counts


def dropping_layers(net: nn.Module, dropout: bool | Collection[int]) -> list[nn.Dropout]:
    """The dropout layers of ``net`` that ``dropout`` turns on: all (True), none (False) or
    those at the given indices among them; a one-line ValueError for an index out of range."""
    layers = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    if isinstance(dropout, bool):
        return layers if dropout else []
    outside = [i for i in dropout if isinstance(i, bool) or not isinstance(i, int)
               or not 0 <= i < len(layers)]
    if outside:
        raise ValueError(f"dropout layer {outside[0]!r} does not exist: the net has "
                         f"{len(layers)} dropout layers (0 to {len(layers) - 1})")
    return [layers[i] for i in sorted(set(dropout))]


def _mean_logits(net: nn.Module, xb: Tensor, samples: int) -> Tensor:
    """``net(xb)``, or the mean of ``samples`` calls (each its own dropout masks), summed in
    float32 at least (bf16 logits too)."""
    logits = net(xb)
    if samples == 1:
        return logits
    dtype = torch.promote_types(logits.dtype, torch.float32)
    return sum((net(xb).to(dtype) for _ in range(samples - 1)), logits.to(dtype)) / samples


def untie(net: FeedbackNet, layers: Collection[int]) -> FeedbackNet:
    """A copy of a FeedbackNet with the conv weight layers ``layers`` made untied (Section 4.1),
    each location starting from the conv's W, R and masks, so that it computes the same function."""
    config = dict(net.config, untied=sorted(set(net.config["untied"]) | set(layers)))
    new = FeedbackNet(**config, fast=net.fast).to(next(net.parameters()))
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
