"""Losses on the output layer (Section 3.2): the multi-class hinge loss (4) and softmax cross-entropy.

The hinge loss's gradient with respect to the outputs is, by construction, exactly
``-delta_L / N`` with ``delta_L`` the output feedback of eq. (6), so that the Hebbian update of
the output layer is ``Delta W_L = delta_L x_{L-1}^t`` (averaged over the batch).  A different
producer of ``delta_L`` (e.g. the simulated Appendix-1 circuit) can be plugged in.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["LOSSES", "hinge_loss_value", "hinge_output_feedback", "make_loss"]

LOSSES = ("hinge", "softmax")
OutputFeedback = Callable[[Tensor, Tensor, float], Tensor]


def _is_target(logits: Tensor, y: Tensor) -> Tensor:
    """Boolean (N, C): True at each example's class c. (Not ``F.one_hot``: it reads the labels'
    range on the host, a synchronisation that a captured CUDA graph cannot hold.)"""
    return torch.zeros_like(logits, dtype=torch.bool).scatter_(1, y.unsqueeze(1), True)


def hinge_loss_value(logits: Tensor, y: Tensor, mu: float) -> Tensor:
    """Per-example loss (4): max(1 - x_c, 0) + mu * sum_{i != c} max(1 + x_i, 0); shape (N,)."""
    target = _is_target(logits, y)
    per_unit = torch.where(target, (1 - logits).clamp_min(0), mu * (1 + logits).clamp_min(0))
    return per_unit.sum(1)


def hinge_output_feedback(logits: Tensor, y: Tensor, mu: float) -> Tensor:
    """Output feedback delta_L of eq. (6), shape (N, C):
    1 if i = c and x_i <= 1;  -mu if i != c and x_i >= -1;  0 otherwise."""
    target = _is_target(logits, y)
    one, zero = logits.new_ones(()), logits.new_zeros(())
    return torch.where(
        target,
        torch.where(logits <= 1, one, zero),
        torch.where(logits >= -1, -mu * one, zero),
    )


def _check_shapes(name: str, n_classes: int, logits: Tensor, y: Tensor) -> None:
    """One-line ValueError unless ``logits`` is (N, n_classes) and ``y`` N integer labels
    (shapes and dtypes only: no synchronisation, so a captured step may call it)."""
    if logits.dim() != 2 or logits.shape[1] != n_classes:
        raise ValueError(f"{name} loss for {n_classes} classes: logits must have shape "
                         f"(N, {n_classes}), got {tuple(logits.shape)}")
    if y.dim() != 1 or y.shape[0] != logits.shape[0] or y.is_floating_point():
        raise ValueError(f"{name} loss: y must hold {logits.shape[0]} integer labels (one per "
                         f"row of the logits), got {y.dtype} of shape {tuple(y.shape)}")


class _HingeLoss(torch.autograd.Function):
    """Mean of loss (4) over the batch whose backward is -delta_L / N (eq. 5-6)."""

    @staticmethod
    def forward(ctx: Any, logits: Tensor, y: Tensor, mu: float, feedback: OutputFeedback) -> Tensor:
        ctx.save_for_backward(logits, y)
        ctx.mu, ctx.feedback = mu, feedback
        return hinge_loss_value(logits, y, mu).mean()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None]:
        logits, y = ctx.saved_tensors
        delta = ctx.feedback(logits, y, ctx.mu)
        return delta * grad / -logits.shape[0], None, None, None


def make_loss(
    name: str,
    n_classes: int,
    *,
    mu: float | None = None,
    output_feedback: OutputFeedback | None = None,
) -> Callable[[Tensor, Tensor], Tensor]:
    """``loss_fn(logits, y) -> scalar``, the mean over the batch.

    ``"hinge"``: loss (4) with balancing factor ``mu`` (default 1/(C-1)); its gradient with
    respect to the logits is ``-delta_L / N``, ``delta_L`` from ``output_feedback(logits, y, mu)``
    (default: eq. (6) in closed form, :func:`hinge_output_feedback`).
    ``"softmax"``: softmax cross-entropy (Section 3.2), for the BP baseline.
    Either checks that the logits have ``n_classes`` columns and ``y`` one label per row.
    """
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    if name == "softmax":
        if mu is not None or output_feedback is not None:
            raise ValueError("mu and output_feedback apply to the hinge loss only")

        def softmax(logits: Tensor, y: Tensor) -> Tensor:
            _check_shapes("softmax", n_classes, logits, y)
            return F.cross_entropy(logits, y)

        return softmax
    if mu is not None and (isinstance(mu, bool) or not isinstance(mu, numbers.Real)
                           or not (math.isfinite(mu) and 0 <= mu <= 1)):
        raise ValueError(f"mu must be a number in [0, 1] (Appendix 1: mu <= 1), got {mu!r:.60}")
    mu_value = 1.0 / (n_classes - 1) if mu is None else float(mu)
    feedback = hinge_output_feedback if output_feedback is None else output_feedback

    def hinge(logits: Tensor, y: Tensor) -> Tensor:
        _check_shapes("hinge", n_classes, logits, y)
        return _HingeLoss.apply(logits, y, mu_value, feedback)

    hinge.mu = mu_value  # type: ignore[attr-defined]
    return hinge
